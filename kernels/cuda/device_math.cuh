// Device-side helpers shared by the kernels (included only from .cu files): element conversion to and
// from f32, warp and block reductions, the paged-cache slot of a position, and the largest head_dim.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// Largest head_dim the attention and RoPE kernels take (a head's q row and accumulators live in shared memory
// and registers sized by it).
inline constexpr int64_t kMaxHeadDim = 256;

}  // namespace lattice::kernels::cuda

namespace lattice::kernels::cuda::detail {

template <typename T> __device__ __forceinline__ float to_f32(T x);
template <> __device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

// Round to nearest even, like kernels/cpu/convert.h.
template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// Sum / max over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats of shared memory; the call ends with a barrier, so scratch can be reused.
__device__ __forceinline__ float block_sum(float x, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_sum(x);
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < warps ? scratch[lane] : 0.0f;
  x = warp_sum(x);
  __syncthreads();
  return x;
}

__device__ __forceinline__ float block_max(float x, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_max(x);
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < warps ? scratch[lane] : -INFINITY;
  x = warp_max(x);
  __syncthreads();
  return x;
}

// Cache slot of context position p: block_table[p / block_size] * block_size + p % block_size.
__device__ __forceinline__ int64_t paged_slot(const int32_t* block_table, int64_t p, int64_t block_size) {
  return static_cast<int64_t>(block_table[p / block_size]) * block_size + p % block_size;
}

// The first position a query row sees when it sees positions [0, visible): with a sliding window of `window`
// positions (> 0, Mistral) only the last `window` of them (as kernels/cpu paged_attention_f32), else all.
__device__ __forceinline__ int first_visible(int visible, int window) {
  return window > 0 ? max(0, visible - window) : 0;
}

}  // namespace lattice::kernels::cuda::detail
