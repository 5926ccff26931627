// Device-side selection of a row's k best logits (included only from .cu files): k passes over the row, each
// taking the best element that ranks after the previous pick, so no membership test is needed. Order: larger
// value first, lower index among equals, NaNs never. Fine for k <= 64; a radix select would replace it beyond.
#pragma once

#include <cstdint>

#include "kernels/cuda/device_math.cuh"

namespace lattice::kernels::cuda::detail {

struct Candidate {
  float value;
  int32_t index;  // -1: none
};

// a ranks before b: larger value, then lower index; a real candidate before none.
__device__ __forceinline__ bool ranks_before(Candidate a, Candidate b) {
  if (b.index < 0) return a.index >= 0;
  if (a.index < 0) return false;
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

__device__ __forceinline__ Candidate warp_best(Candidate c) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, c.value, offset), __shfl_xor_sync(0xffffffffu, c.index, offset)};
    if (ranks_before(other, c)) c = other;
  }
  return c;
}

// The block's best candidate, returned to every thread; scratch holds 32 candidates of shared memory.
__device__ __forceinline__ Candidate block_best(Candidate c, Candidate* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  c = warp_best(c);
  if (lane == 0) scratch[warp] = c;
  __syncthreads();
  c = warp_best(lane < warps ? scratch[lane] : Candidate{-INFINITY, -1});
  __syncthreads();
  return c;
}

// Writes the row's best min(k, non-NaN count) candidates to chosen[0..found), best first, and returns found.
// Called by the whole block; chosen[] is visible to every thread on return.
template <typename T>
__device__ int select_top(const T* row, int64_t vocab, int k, Candidate* chosen, Candidate* scratch) {
  Candidate previous{INFINITY, -1};
  int found = 0;
  for (; found < k; ++found) {
    Candidate best{-INFINITY, -1};
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const Candidate c{to_f32(row[i]), static_cast<int32_t>(i)};
      if (isnan(c.value)) continue;
      if ((previous.index < 0 || ranks_before(previous, c)) && ranks_before(c, best)) best = c;
    }
    best = block_best(best, scratch);
    if (best.index < 0) break;  // fewer than k non-NaN logits (block-uniform)
    if (threadIdx.x == 0) chosen[found] = best;
    previous = best;
  }
  __syncthreads();
  return found;
}

// log(sum(exp(x - top))) over the row's non-NaN logits, returned to every thread.
template <typename T>
__device__ float log_sum_exp_from(const T* row, int64_t vocab, float top, float* scratch) {
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = to_f32(row[i]);
    if (!isnan(x)) sum += expf(x - top);
  }
  return logf(block_sum(sum, scratch));
}

}  // namespace lattice::kernels::cuda::detail
