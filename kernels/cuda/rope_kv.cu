#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/rope_kv.cuh"

namespace lattice::kernels::cuda {

namespace {

// One block per token: the token's cos/sin table in shared memory, then every (head, pair) of q and k, then
// the v row. The rotated k is stored only in the cache (the step attends from the cache).
template <typename T>
__global__ void rope_write_kv_kernel(const T* __restrict__ qkv, const int32_t* __restrict__ positions,
                                     const float* __restrict__ inv_freq, const int64_t* __restrict__ slots,
                                     T* __restrict__ k_cache, T* __restrict__ v_cache, T* __restrict__ q_out,
                                     int heads, int kv_heads, int head_dim) {
  extern __shared__ float cos_sin[];  // [2, half]
  const int64_t t = blockIdx.x;
  const int half = head_dim / 2;
  float* cos_t = cos_sin;
  float* sin_t = cos_sin + half;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double s, c;
    sincos(static_cast<double>(positions[t]) * static_cast<double>(inv_freq[i]), &s, &c);
    cos_t[i] = static_cast<float>(c);
    sin_t[i] = static_cast<float>(s);
  }
  __syncthreads();

  const int64_t slot = slots[t];
  const int64_t q_row = static_cast<int64_t>(heads) * head_dim;
  const int64_t kv_row = static_cast<int64_t>(kv_heads) * head_dim;
  const T* src = qkv + t * (q_row + 2 * kv_row);
  const int rotated_heads = slot >= 0 ? heads + kv_heads : heads;  // k only when it is stored
  for (int idx = threadIdx.x; idx < rotated_heads * half; idx += blockDim.x) {
    const int h = idx / half, i = idx % half;
    const T* in = src + static_cast<int64_t>(h) * head_dim;  // k heads follow the q heads in the row
    T* dst = h < heads ? q_out + t * q_row + static_cast<int64_t>(h) * head_dim
                       : k_cache + slot * kv_row + static_cast<int64_t>(h - heads) * head_dim;
    const float a = detail::to_f32(in[i]), b = detail::to_f32(in[i + half]);
    dst[i] = detail::from_f32<T>(a * cos_t[i] - b * sin_t[i]);
    dst[i + half] = detail::from_f32<T>(b * cos_t[i] + a * sin_t[i]);
  }
  if (slot >= 0) {
    const T* v = src + q_row + kv_row;
    T* dst = v_cache + slot * kv_row;
    for (int64_t i = threadIdx.x; i < kv_row; i += blockDim.x) dst[i] = v[i];
  }
}

}  // namespace

template <typename T>
void rope_write_kv(const T* qkv, const int32_t* positions, const float* inv_freq, const int64_t* slots, T* k_cache,
                   T* v_cache, T* q_out, int64_t tokens, const PagedLayout& layout, cudaStream_t stream) {
  if (tokens == 0) return;
  LATTICE_CHECK(layout.head_dim % 2 == 0 && layout.head_dim <= kMaxHeadDim, "rope_write_kv: head_dim ",
                layout.head_dim, " must be even and at most ", kMaxHeadDim);
  LATTICE_CHECK(layout.heads <= 1024 && layout.kv_heads <= layout.heads, "rope_write_kv: ", layout.heads,
                " query heads and ", layout.kv_heads, " kv heads are not a supported geometry");
  LATTICE_CHECK(tokens <= INT32_MAX, "rope_write_kv: ", tokens, " tokens is more than one grid dimension holds");
  const size_t shared = sizeof(float) * static_cast<size_t>(layout.head_dim);
  rope_write_kv_kernel<<<static_cast<unsigned>(tokens), 256, shared, stream>>>(
      qkv, positions, inv_freq, slots, k_cache, v_cache, q_out, static_cast<int>(layout.heads),
      static_cast<int>(layout.kv_heads), static_cast<int>(layout.head_dim));
  CUDA_CHECK_LAUNCH();
}

#define LATTICE_INSTANTIATE(T)                                                                                    \
  template void rope_write_kv<T>(const T*, const int32_t*, const float*, const int64_t*, T*, T*, T*, int64_t,     \
                                 const PagedLayout&, cudaStream_t);
LATTICE_INSTANTIATE(float)
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
