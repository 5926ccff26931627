#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/rms_norm.cuh"

namespace lattice::kernels::cuda {

namespace {

// One block per row. Each thread touches the same indices in both passes, so out may alias x and the
// residual it re-reads is the value it wrote itself.
template <typename T>
__global__ void rms_norm_kernel(const T* x, T* residual, const T* __restrict__ weight, T* out, int64_t dim,
                                float eps) {
  __shared__ float scratch[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = detail::to_f32(x[base + i]);
    if (residual != nullptr) {
      const T stored = detail::from_f32<T>(v + detail::to_f32(residual[base + i]));
      residual[base + i] = stored;
      v = detail::to_f32(stored);
    }
    sum_sq += v * v;
  }
  sum_sq = detail::block_sum(sum_sq, scratch);
  const float inv = rsqrtf(sum_sq / static_cast<float>(dim) + eps);
  const T* src = residual != nullptr ? residual : x;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
    out[base + i] = detail::from_f32<T>(detail::to_f32(src[base + i]) * inv * detail::to_f32(weight[i]));
}

}  // namespace

template <typename T>
void rms_norm(const T* x, T* residual, const T* weight, T* out, int64_t rows, int64_t dim, float eps,
              cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(rows <= INT32_MAX, "rms_norm: ", rows, " rows is more than one grid dimension holds");
  const int threads = dim >= 4096 ? 1024 : dim >= 1024 ? 512 : 128;
  rms_norm_kernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, residual, weight, out, dim, eps);
  CUDA_CHECK_LAUNCH();
}

template void rms_norm<float>(const float*, float*, const float*, float*, int64_t, int64_t, float, cudaStream_t);
template void rms_norm<__half>(const __half*, __half*, const __half*, __half*, int64_t, int64_t, float, cudaStream_t);
template void rms_norm<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*,
                                      int64_t, int64_t, float, cudaStream_t);

}  // namespace lattice::kernels::cuda
