#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace lattice::kernels::cuda {

namespace {

template <typename T>
__global__ void silu_mul_kernel(const T* gate, const T* __restrict__ up, T* out, int64_t rows, int64_t inter,
                                int64_t in_stride) {
  const int64_t n = rows * inter;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / inter, i = idx % inter;
    const float g = detail::to_f32(gate[r * in_stride + i]);
    const float u = detail::to_f32(up[r * in_stride + i]);
    out[idx] = detail::from_f32<T>(g / (1.0f + expf(-g)) * u);
  }
}

}  // namespace

template <typename T>
void silu_mul(const T* gate, const T* up, T* out, int64_t rows, int64_t inter, int64_t in_stride,
              cudaStream_t stream) {
  const int64_t n = rows * inter;
  if (n == 0) return;
  LATTICE_CHECK(in_stride >= inter, "silu_mul: input row stride ", in_stride, " is shorter than ", inter);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);  // grid-stride beyond this
  silu_mul_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(gate, up, out, rows, inter, in_stride);
  CUDA_CHECK_LAUNCH();
}

template void silu_mul<float>(const float*, const float*, float*, int64_t, int64_t, int64_t,
                                 cudaStream_t);
template void silu_mul<__half>(const __half*, const __half*, __half*, int64_t, int64_t, int64_t,
                                 cudaStream_t);
template void silu_mul<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, int64_t, int64_t, int64_t,
                                 cudaStream_t);

}  // namespace lattice::kernels::cuda
