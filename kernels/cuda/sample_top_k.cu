#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/sample_top_k.cuh"
#include "kernels/cuda/top_candidates.cuh"
#include "kernels/sampling_rng.h"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

// Inclusive prefix sum of one float per thread over the block; *block_total gets the block's sum. scratch holds
// 32 floats of shared memory; every thread must call.
__device__ float block_inclusive_scan(float x, float* scratch, float* block_total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    float w = lane < warps ? scratch[lane] : 0.0f;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const float y = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += y;
    }
    if (lane < warps) scratch[lane] = w;
  }
  __syncthreads();
  const float before = warp > 0 ? scratch[warp - 1] : 0.0f;
  *block_total = scratch[warps - 1];
  __syncthreads();
  return x + before;
}

// Sum of the temperature weights exp((x - top) / T) that are >= floor (NaNs excluded), to every thread.
template <typename T>
__device__ float kept_mass(const T* row, int64_t vocab, float top, float temperature, float floor, float* scratch) {
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = detail::to_f32(row[i]);
    if (isnan(x)) continue;
    const float w = expf((x - top) / temperature);
    if (w >= floor) sum += w;
  }
  return detail::block_sum(sum, scratch);
}

// A draw over the whole vocabulary (top_k = 0): tokens with temperature weight w = exp((x - top) / T) >= floor,
// where floor is the largest weight whose set {w >= floor} still holds top_p of the mass (found by bisection on
// log w), raised to min_p (the top token's weight is 1). The draw walks that set in index order, as
// kernels/cpu/sampling.h defines it. Returns the token (every thread), -1 for an all-NaN row.
template <typename T>
__device__ int32_t draw_full_vocab(const T* row, int64_t vocab, const SamplingRow& p, float top, float* scratch,
                                   int32_t* shared_pick) {
  float floor = 0.0f;
  if (p.top_p < 1.0f) {
    const float target = p.top_p * kept_mass(row, vocab, top, p.temperature, 0.0f, scratch);
    if (kept_mass(row, vocab, top, p.temperature, 1.0f, scratch) >= target) {
      floor = 1.0f;  // the top token(s) alone
    } else {
      float lo = 0.0f, hi = 100.0f;  // -log(floor): mass(exp(-lo)) < target <= mass(exp(-hi))
      for (int it = 0; it < 30; ++it) {
        const float mid = 0.5f * (lo + hi);
        if (kept_mass(row, vocab, top, p.temperature, expf(-mid), scratch) >= target)
          hi = mid;
        else
          lo = mid;
      }
      floor = expf(-hi);
    }
  }
  floor = fmaxf(floor, p.min_p);
  const float kept = kept_mass(row, vocab, top, p.temperature, floor, scratch);
  const float target = static_cast<float>(sampling_uniform(p.seed, p.offset)) * kept;

  if (threadIdx.x == 0) *shared_pick = INT32_MAX;
  int32_t last_kept = -1;  // per thread: the fallback when rounding leaves target past the scanned total
  float running = 0.0f;
  for (int64_t base = 0; base < vocab; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    float w = 0.0f;
    if (i < vocab) {
      const float x = detail::to_f32(row[i]);
      if (!isnan(x)) w = expf((x - top) / p.temperature);
      if (w < floor) w = 0.0f;
    }
    if (w > 0.0f) last_kept = static_cast<int32_t>(i);
    float chunk_total = 0.0f;
    const float inclusive = running + block_inclusive_scan(w, scratch, &chunk_total);
    if (w > 0.0f && inclusive > target && inclusive - w <= target) atomicMin(shared_pick, static_cast<int32_t>(i));
    __syncthreads();
    if (*shared_pick != INT32_MAX) break;  // block-uniform: read after the barrier
    running += chunk_total;
  }
  const int32_t picked = *shared_pick;
  if (picked != INT32_MAX) return picked;  // block-uniform
  // Fallback: the last kept token of the row (block-wide max of last_kept).
  __syncthreads();  // every thread has read shared_pick
  if (threadIdx.x == 0) *shared_pick = -1;
  __syncthreads();
  if (last_kept >= 0) atomicMax(shared_pick, last_kept);
  __syncthreads();
  return *shared_pick;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
sample_top_k_kernel(const T* __restrict__ logits, int64_t vocab, const SamplingRow* __restrict__ params,
                    int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  __shared__ detail::Candidate scratch[32];
  __shared__ float sum_scratch[32];
  __shared__ detail::Candidate chosen[kMaxTopK];
  const int64_t r = blockIdx.x;
  const SamplingRow p = params[r];
  const T* row = logits + r * vocab;
  if (p.top_k <= 0 || p.top_k >= vocab) {  // the whole vocabulary
    __shared__ int32_t shared_pick;
    float local_max = -INFINITY;
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float x = detail::to_f32(row[i]);
      if (!isnan(x)) local_max = fmaxf(local_max, x);
    }
    const float top = detail::block_max(local_max, sum_scratch);
    const int32_t token = top == -INFINITY ? -1 : draw_full_vocab(row, vocab, p, top, sum_scratch, &shared_pick);
    const float log_sum = detail::log_sum_exp_from(row, vocab, top, sum_scratch);
    if (threadIdx.x == 0) {
      tokens[r] = token < 0 ? 0 : token;
      if (logprobs) logprobs[r] = token < 0 ? NAN : detail::to_f32(row[token]) - top - log_sum;
    }
    return;
  }
  if (p.top_k > kMaxTopK) {
    if (threadIdx.x == 0) {
      tokens[r] = -1;
      if (logprobs) logprobs[r] = NAN;
    }
    return;
  }

  const int found = detail::select_top(row, vocab, p.top_k, chosen, scratch);
  const float top = found > 0 ? chosen[0].value : 0.0f;
  const float log_sum = detail::log_sum_exp_from(row, vocab, top, sum_scratch);

  if (threadIdx.x != 0) return;
  if (found == 0) {  // an all-NaN row
    tokens[r] = 0;
    if (logprobs) logprobs[r] = NAN;
    return;
  }
  // Candidate probabilities under the temperature, then the top-p and min-p prefixes, then the draw.
  float weights[kMaxTopK];
  float total = 0.0f;
  for (int i = 0; i < found; ++i) {
    weights[i] = expf((chosen[i].value - top) / p.temperature);
    total += weights[i];
  }
  int keep = 0;
  float kept = 0.0f;
  while (keep < found) {
    kept += weights[keep++];
    if (kept >= p.top_p * total) break;
  }
  if (p.min_p > 0.0f) {  // weights[0] is the top candidate's (exp(0) = 1)
    int n = 1;
    while (n < keep && weights[n] >= p.min_p * weights[0]) ++n;
    keep = n;
    kept = 0.0f;
    for (int i = 0; i < keep; ++i) kept += weights[i];
  }
  const float target = static_cast<float>(sampling_uniform(p.seed, p.offset)) * kept;
  int pick = keep - 1;
  float running = 0.0f;
  for (int i = 0; i < keep; ++i) {
    running += weights[i];
    if (target < running) {
      pick = i;
      break;
    }
  }
  tokens[r] = chosen[pick].index;
  if (logprobs) logprobs[r] = chosen[pick].value - top - log_sum;
}

// The n best raw logits of a row with their log-softmax values (the per-token "top logprobs" list).
template <typename T>
__global__ void __launch_bounds__(kThreads)
top_logprobs_kernel(const T* __restrict__ logits, int64_t vocab, int n, int32_t* __restrict__ tokens,
                    float* __restrict__ logprobs) {
  __shared__ detail::Candidate scratch[32];
  __shared__ float sum_scratch[32];
  __shared__ detail::Candidate chosen[kMaxTopK];
  const int64_t r = blockIdx.x;
  const T* row = logits + r * vocab;
  const int found = detail::select_top(row, vocab, n, chosen, scratch);
  const float top = found > 0 ? chosen[0].value : 0.0f;
  const float log_sum = detail::log_sum_exp_from(row, vocab, top, sum_scratch);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    tokens[r * n + i] = i < found ? chosen[i].index : -1;
    logprobs[r * n + i] = i < found ? chosen[i].value - top - log_sum : NAN;
  }
}

}  // namespace

template <typename T>
void sample_top_k(const T* logits, int64_t rows, int64_t vocab, const SamplingRow* params, int32_t* tokens,
                  float* logprobs, cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0 && vocab <= INT32_MAX, "sample_top_k: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "sample_top_k: ", rows, " rows is more than one grid dimension holds");
  sample_top_k_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, params, tokens, logprobs);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void top_logprobs(const T* logits, int64_t rows, int64_t vocab, int n, int32_t* tokens, float* logprobs,
                  cudaStream_t stream) {
  if (rows == 0 || n == 0) return;
  LATTICE_CHECK(n > 0 && n <= kMaxTopK, "top_logprobs: n = ", n, " is outside [1, ", kMaxTopK, "]");
  LATTICE_CHECK(vocab > 0 && vocab <= INT32_MAX, "top_logprobs: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "top_logprobs: ", rows, " rows is more than one grid dimension holds");
  top_logprobs_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, n, tokens, logprobs);
  CUDA_CHECK_LAUNCH();
}

template void sample_top_k<float>(const float*, int64_t, int64_t, const SamplingRow*, int32_t*, float*, cudaStream_t);
template void sample_top_k<__half>(const __half*, int64_t, int64_t, const SamplingRow*, int32_t*, float*,
                                   cudaStream_t);
template void sample_top_k<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, const SamplingRow*, int32_t*,
                                          float*, cudaStream_t);
template void top_logprobs<float>(const float*, int64_t, int64_t, int, int32_t*, float*, cudaStream_t);
template void top_logprobs<__half>(const __half*, int64_t, int64_t, int, int32_t*, float*, cudaStream_t);
template void top_logprobs<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, int, int32_t*, float*,
                                          cudaStream_t);

}  // namespace lattice::kernels::cuda
