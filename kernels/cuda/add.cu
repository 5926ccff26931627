#include <algorithm>

#include "kernels/cuda/add.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"

namespace lattice::kernels::cuda {

namespace {

template <typename T>
__global__ void add_inplace_kernel(T* __restrict__ x, const T* __restrict__ y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = detail::from_f32<T>(detail::to_f32(x[i]) + detail::to_f32(y[i]));
}

}  // namespace

template <typename T>
void add_inplace(T* x, const T* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);  // grid-stride beyond this
  add_inplace_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
}

template void add_inplace<float>(float*, const float*, int64_t, cudaStream_t);
template void add_inplace<__half>(__half*, const __half*, int64_t, cudaStream_t);
template void add_inplace<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, int64_t, cudaStream_t);

}  // namespace lattice::kernels::cuda
