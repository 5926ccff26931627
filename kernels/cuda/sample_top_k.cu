#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/sample_top_k.cuh"
#include "kernels/cuda/top_candidates.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

// splitmix64 finaliser over (seed, offset): a counter-based draw, identical on host and device.
__host__ __device__ __forceinline__ double uniform_from(uint64_t seed, uint64_t offset) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (offset + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;  // 53 random bits in [0, 1)
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
  if (p.top_k < 1 || p.top_k > kMaxTopK) {
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
  const float target = static_cast<float>(uniform_from(p.seed, p.offset)) * kept;
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

double sampling_uniform(uint64_t seed, uint64_t offset) { return uniform_from(seed, offset); }

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
