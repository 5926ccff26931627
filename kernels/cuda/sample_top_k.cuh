// Seeded top-k / top-p / temperature sampling and the top-n log-probability list on the GPU (CUDA), one block
// per row. Both report the log-softmax of the logits they are given: pass penalised logits (penalties.cuh) to
// sample_top_k and the raw ones to top_logprobs / token_logprobs for the model's log-probabilities, as
// engine/sampler/sampler.h reports them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

inline constexpr int kMaxTopK = 64;

// Per row, in device memory (so that a captured CUDA graph reads the current values).
struct SamplingRow {
  float temperature;  // > 0 (greedy requests use greedy_sample)
  int32_t top_k;      // in [1, kMaxTopK], or <= 0 (or >= vocab) for the whole vocabulary; a row with
                      // kMaxTopK < top_k < vocab gets token -1 and a NaN logprob
  float top_p;        // in (0, 1]: the smallest prefix of the candidates whose probability reaches top_p
  float min_p;        // 0: off; else keep the prefix whose probability is >= min_p x the top one's
  uint64_t seed;      // the sequence's seed
  uint64_t offset;    // the draw's index within the sequence (e.g. tokens generated so far): the draw depends
                      // on (seed, offset) only, never on the row's place in the batch
};

// logits: [rows, vocab]. The top_k candidates are the largest logits (lower index first among equals, NaNs
// never), their probabilities softmax(logit / temperature) restricted to the top-p prefix and then the min-p
// prefix (engine/sampler/sampler.cc's order), and one uniform draw
// u = hash(seed, offset) picks the token. tokens[r] is the token, logprobs[r] (may be null) its
// log-softmax. Cost: top_k passes over the row (fine for k <= 64 and vocabularies of ~10^5; a radix select
// would replace it for larger k). Whole-vocabulary rows (top_k <= 0) keep every token whose weight
// exp((x - top) / T) is at least a floor: the top-p cut found by a 30-step bisection on log(weight) (about 35
// passes over the row), raised to min_p; the draw walks the kept tokens in index order (the CPU sampler walks
// them by logit, so the same uniform picks differently, with the same distribution), and tokens tied at the
// top-p boundary are all kept. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void sample_top_k(const T* logits, int64_t rows, int64_t vocab, const SamplingRow* params, int32_t* tokens,
                  float* logprobs, cudaStream_t stream);

// The n (1..kMaxTopK) largest logits of each row, best first (lower index among equals, NaNs never), with their
// log-softmax values: tokens and logprobs are [rows, n]; a row with fewer than n non-NaN logits pads with -1 / NaN.
// Pass raw logits for the model's log-probabilities. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void top_logprobs(const T* logits, int64_t rows, int64_t vocab, int n, int32_t* tokens, float* logprobs,
                  cudaStream_t stream);

// The uniform in [0, 1) that sample_top_k draws for (seed, offset), for tests and host-side replay.
double sampling_uniform(uint64_t seed, uint64_t offset);

}  // namespace lattice::kernels::cuda
