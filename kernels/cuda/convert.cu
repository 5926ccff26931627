#include <algorithm>

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"

namespace lattice::kernels::cuda {

namespace {

template <typename TIn, typename TOut>
__global__ void convert_kernel(const TIn* __restrict__ in, TOut* __restrict__ out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = detail::from_f32<TOut>(detail::to_f32(in[i]));
}

}  // namespace

template <typename TIn, typename TOut>
void convert(const TIn* in, TOut* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);  // grid-stride beyond this
  convert_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(in, out, n);
  CUDA_CHECK_LAUNCH();
}

#define LATTICE_INSTANTIATE(TIn, TOut) template void convert<TIn, TOut>(const TIn*, TOut*, int64_t, cudaStream_t);
LATTICE_INSTANTIATE(float, __half)
LATTICE_INSTANTIATE(float, __nv_bfloat16)
LATTICE_INSTANTIATE(__half, float)
LATTICE_INSTANTIATE(__half, __nv_bfloat16)
LATTICE_INSTANTIATE(__nv_bfloat16, float)
LATTICE_INSTANTIATE(__nv_bfloat16, __half)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
