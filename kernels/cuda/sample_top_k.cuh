// Seeded top-k / top-p / temperature sampling and the top-n log-probability list on the GPU (CUDA), one block
// per row. Both report the log-softmax of the logits they are given: pass penalised logits (penalties.cuh) to
// sample_top_k and the raw ones to top_logprobs / token_logprobs for the model's log-probabilities, as
// engine/sampler/sampler.h reports them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/sampling.h"

namespace lattice::kernels::cuda {

inline constexpr int kMaxTopK = cpu::kMaxTopK;

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

// logits: [rows, vocab]. Draws each row's token by the rules of kernels/cpu/sampling.h (the reference), in f32,
// with the uniform u = kernels::sampling_uniform(seed, offset) (kernels/sampling_rng.h); NaN logits are never
// drawn. tokens[r] is the token, logprobs[r] (may be null) its log-softmax under the given logits.
// Rows with top_k in [1, kMaxTopK]: top_k passes over the row select the candidates (fine for vocabularies of
// ~10^5; a radix select would replace it for larger k). Whole-vocabulary rows (top_k <= 0 or >= vocab): the
// top-p floor is found by a 30-step bisection on log(weight) (about 35 passes over the row), so a token whose
// weight is within ~1e-7 (relative) of the reference floor may be kept or dropped differently; the draw walks
// the kept tokens in index order as the reference does. A row with kMaxTopK < top_k < vocab gets token -1 and a
// NaN logprob. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void sample_top_k(const T* logits, int64_t rows, int64_t vocab, const SamplingRow* params, int32_t* tokens,
                  float* logprobs, cudaStream_t stream);

// The n (1..kMaxTopK) largest logits of each row, best first (lower index among equals, NaNs never), with their
// log-softmax values: tokens and logprobs are [rows, n]; a row with fewer than n non-NaN logits pads with -1 / NaN.
// Pass raw logits for the model's log-probabilities. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void top_logprobs(const T* logits, int64_t rows, int64_t vocab, int n, int32_t* tokens, float* logprobs,
                  cudaStream_t stream);

}  // namespace lattice::kernels::cuda
