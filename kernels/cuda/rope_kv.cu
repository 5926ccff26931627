#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/rope_kv.cuh"

namespace lattice::kernels::cuda {

namespace {

// One block per token: the token's cos/sin table in shared memory, then every (head, pair) of q and k.
template <typename T>
__global__ void rope_write_kv_kernel(T* __restrict__ q, T* __restrict__ k, const T* __restrict__ v,
                                     const int32_t* __restrict__ positions, const float* __restrict__ inv_freq,
                                     const int64_t* __restrict__ slots, T* __restrict__ k_cache,
                                     T* __restrict__ v_cache, int heads, int kv_heads, int head_dim) {
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
  const int64_t cache_row = static_cast<int64_t>(kv_heads) * head_dim;
  const int pairs = (heads + kv_heads) * half;
  for (int idx = threadIdx.x; idx < pairs; idx += blockDim.x) {
    const int h = idx / half, i = idx % half;
    const bool is_q = h < heads;
    T* row = is_q ? q + (t * heads + h) * head_dim : k + (t * kv_heads + (h - heads)) * head_dim;
    const float a = detail::to_f32(row[i]), b = detail::to_f32(row[i + half]);
    const T ra = detail::from_f32<T>(a * cos_t[i] - b * sin_t[i]);
    const T rb = detail::from_f32<T>(b * cos_t[i] + a * sin_t[i]);
    row[i] = ra;
    row[i + half] = rb;
    if (!is_q && slot >= 0) {
      T* dst = k_cache + slot * cache_row + static_cast<int64_t>(h - heads) * head_dim;
      dst[i] = ra;
      dst[i + half] = rb;
    }
  }
  if (slot >= 0) {
    const T* src = v + t * cache_row;
    T* dst = v_cache + slot * cache_row;
    for (int64_t i = threadIdx.x; i < cache_row; i += blockDim.x) dst[i] = src[i];
  }
}

}  // namespace

template <typename T>
void rope_write_kv(T* q, T* k, const T* v, const int32_t* positions, const float* inv_freq, const int64_t* slots,
                   T* k_cache, T* v_cache, int64_t tokens, const PagedLayout& layout, cudaStream_t stream) {
  if (tokens == 0) return;
  LATTICE_CHECK(layout.head_dim % 2 == 0 && layout.head_dim <= kMaxHeadDim, "rope_write_kv: head_dim ",
                layout.head_dim, " must be even and at most ", kMaxHeadDim);
  LATTICE_CHECK(layout.heads <= 1024 && layout.kv_heads <= layout.heads, "rope_write_kv: ", layout.heads,
                " query heads and ", layout.kv_heads, " kv heads are not a supported geometry");
  LATTICE_CHECK(tokens <= INT32_MAX, "rope_write_kv: ", tokens, " tokens is more than one grid dimension holds");
  const size_t shared = sizeof(float) * static_cast<size_t>(layout.head_dim);
  rope_write_kv_kernel<<<static_cast<unsigned>(tokens), 256, shared, stream>>>(
      q, k, v, positions, inv_freq, slots, k_cache, v_cache, static_cast<int>(layout.heads),
      static_cast<int>(layout.kv_heads), static_cast<int>(layout.head_dim));
  CUDA_CHECK_LAUNCH();
}

#define LATTICE_INSTANTIATE(T)                                                                                 \
  template void rope_write_kv<T>(T*, T*, const T*, const int32_t*, const float*, const int64_t*, T*, T*, int64_t, \
                                 const PagedLayout&, cudaStream_t);
LATTICE_INSTANTIATE(float)
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
