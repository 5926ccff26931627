#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/sampling.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

struct Best {
  float value;
  int32_t index;
};

// The larger value; the lower index on ties; a NaN loses to anything.
__device__ __forceinline__ Best better(Best a, Best b) {
  if (isnan(b.value) || b.index < 0) return a;
  if (isnan(a.value) || a.index < 0) return b;
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ __forceinline__ Best warp_best(Best x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Best other{__shfl_xor_sync(0xffffffffu, x.value, offset), __shfl_xor_sync(0xffffffffu, x.index, offset)};
    x = better(x, other);
  }
  return x;
}

// The log-softmax denominator built in one pass: the largest value seen and the sum of exp(x - max) over the values
// seen (max -inf and sum 0 before any). Merging rescales the side with the smaller max; equal maxima (+inf with
// +inf, -inf with -inf) add without exp(inf - inf).
struct LogSumExp {
  float max, sum;
};

__device__ __forceinline__ float rescaled(LogSumExp a, float to) {
  return a.sum == 0.0f || a.max == to ? a.sum : a.sum * expf(a.max - to);
}

__device__ __forceinline__ LogSumExp merge(LogSumExp a, LogSumExp b) {
  const float m = fmaxf(a.max, b.max);
  return {m, rescaled(a, m) + rescaled(b, m)};
}

__device__ __forceinline__ LogSumExp warp_merge(LogSumExp x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    x = merge(x, {__shfl_xor_sync(0xffffffffu, x.max, offset), __shfl_xor_sync(0xffffffffu, x.sum, offset)});
  return x;
}

// One block per row, one pass over it: the argmax, the log-softmax denominator (online, as above) and whether the
// row can be sampled at all (kernels::cpu::check_logits's rule: NaN, then +inf, then nothing but -inf).
template <typename T>
__global__ void __launch_bounds__(kThreads)
greedy_kernel(const T* __restrict__ logits, int64_t vocab, int32_t* __restrict__ tokens, float* __restrict__ logprobs,
              int32_t* __restrict__ status) {
  __shared__ Best warp_results[32];
  __shared__ LogSumExp warp_sums[32];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  Best best{-INFINITY, -1};
  LogSumExp denominator{-INFINITY, 0.0f};
  int nan = 0, positive_infinity = 0, finite = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = detail::to_f32(row[i]);
    best = better(best, Best{x, static_cast<int32_t>(i)});
    nan |= isnan(x);
    positive_infinity |= x == INFINITY;
    finite |= isfinite(x);
    if (!isnan(x)) denominator = merge(denominator, {x, 1.0f});
  }
  best = warp_best(best);
  denominator = warp_merge(denominator);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = static_cast<int>(blockDim.x / 32);
  if (lane == 0) {
    warp_results[warp] = best;
    warp_sums[warp] = denominator;
  }
  nan = __syncthreads_or(nan);  // also the barrier before the per-warp results are read
  positive_infinity = __syncthreads_or(positive_infinity);
  finite = __syncthreads_or(finite);
  best = lane < warps ? warp_results[lane] : Best{-INFINITY, -1};
  best = warp_best(best);  // every warp now holds the row's best
  denominator = warp_merge(lane < warps ? warp_sums[lane] : LogSumExp{-INFINITY, 0.0f});
  if (best.index < 0) best = Best{NAN, 0};  // an all-NaN row
  if (threadIdx.x != 0) return;
  tokens[blockIdx.x] = best.index;
  // logits[best] - (max + log(sum)); max is the best value whenever the row has a number, so this is -log(sum).
  if (logprobs) logprobs[blockIdx.x] = isnan(best.value) ? NAN : best.value - denominator.max - logf(denominator.sum);
  if (status) status[blockIdx.x] = static_cast<int32_t>(cpu::classify_logits(nan, positive_infinity, finite));
}

}  // namespace

template <typename T>
void greedy_sample(const T* logits, int64_t rows, int64_t vocab, int32_t* tokens, float* logprobs, int32_t* status,
                   cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0 && vocab <= INT32_MAX, "greedy_sample: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "greedy_sample: ", rows, " rows is more than one grid dimension holds");
  greedy_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, tokens, logprobs, status);
  CUDA_CHECK_LAUNCH();
}

template void greedy_sample<float>(const float*, int64_t, int64_t, int32_t*, float*, int32_t*, cudaStream_t);
template void greedy_sample<__half>(const __half*, int64_t, int64_t, int32_t*, float*, int32_t*, cudaStream_t);
template void greedy_sample<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, int32_t*, float*, int32_t*,
                                            cudaStream_t);

}  // namespace lattice::kernels::cuda
