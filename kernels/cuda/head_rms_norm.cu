#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/head_rms_norm.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kWarps = 4;  // heads per block: one warp each

// One warp per (token, head). Each lane touches the same indices in both passes, so the in-place write reads
// only values the lane itself has read.
template <typename T>
__global__ void head_rms_norm_kernel(T* x, int64_t row_stride, const T* __restrict__ weight, int64_t tokens,
                                     int64_t heads, int64_t head_dim, float eps) {
  const int64_t unit = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (unit >= tokens * heads) return;
  T* head = x + (unit / heads) * row_stride + (unit % heads) * head_dim;
  const int lane = static_cast<int>(threadIdx.x % 32);
  float sum_sq = 0.0f;
  for (int64_t i = lane; i < head_dim; i += 32) {
    const float v = detail::to_f32(head[i]);
    sum_sq += v * v;
  }
  sum_sq = detail::warp_sum(sum_sq);
  const float inv = rsqrtf(sum_sq / static_cast<float>(head_dim) + eps);
  for (int64_t i = lane; i < head_dim; i += 32)
    head[i] = detail::from_f32<T>(detail::to_f32(head[i]) * inv * detail::to_f32(weight[i]));
}

}  // namespace

template <typename T>
void head_rms_norm(T* x, int64_t row_stride, const T* weight, int64_t tokens, int64_t heads, int64_t head_dim,
                   float eps, cudaStream_t stream) {
  const int64_t units = tokens * heads;
  if (units == 0) return;
  const int64_t blocks = (units + kWarps - 1) / kWarps;
  LATTICE_CHECK(blocks <= INT32_MAX, "head_rms_norm: ", units, " heads is more than one grid dimension holds");
  head_rms_norm_kernel<<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(x, row_stride, weight, tokens,
                                                                                  heads, head_dim, eps);
  CUDA_CHECK_LAUNCH();
}

template void head_rms_norm<float>(float*, int64_t, const float*, int64_t, int64_t, int64_t, float, cudaStream_t);
template void head_rms_norm<__half>(__half*, int64_t, const __half*, int64_t, int64_t, int64_t, float, cudaStream_t);
template void head_rms_norm<__nv_bfloat16>(__nv_bfloat16*, int64_t, const __nv_bfloat16*, int64_t, int64_t, int64_t,
                                           float, cudaStream_t);

}  // namespace lattice::kernels::cuda
