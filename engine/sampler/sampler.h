// Turns one sequence's next-token logits into a token on the CPU: the penalties of kernels/cpu/penalties.h,
// then the sampling rules of kernels/cpu/sampling.h (temperature, top-k, top-p, min-p) with the counter-based
// uniform of kernels/sampling_rng.h. The draw depends only on (seed, tokens generated so far), so results do not
// depend on batch composition, a preempted and recomputed sequence draws what it would have, and the GPU
// sampler (gpu_sampler.h) draws the same tokens from the same seed.
// Log-probabilities are the model's: log-softmax of the raw logits, before penalties and temperature.
// A row that cannot be sampled (kernels::cpu::check_logits: NaN, +inf, or nothing but -inf after penalties, from a
// bad checkpoint or extreme penalties) is not an exception: its SampledToken carries an error, and the scheduler
// ends that request alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler/sampling_params.h"
#include "kernels/cpu/sampling.h"

namespace lattice {

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0;               // of the chosen token
  std::vector<TokenLogprob> top;   // the params.logprobs most likely tokens, most likely first
  std::string error = {};          // non-empty: this row could not be sampled (token, logprob, top unset)
};

// The error of a row that check_logits refuses, for the token at `position` (0-based, prompt included).
std::string unsampleable_logits_error(kernels::cpu::LogitsCheck check, int64_t position);

class SequenceSampler {
 public:
  SequenceSampler(const SamplingParams& params, uint64_t seed);

  // `context` is every token so far (prompt then generated); `prompt_len` splits the two. The draw's offset is
  // the number of generated tokens, context.size() - prompt_len. Logits check_logits refuses give a token with
  // an error, and leave the sampler usable.
  SampledToken sample(const float* logits, int64_t vocab, const std::vector<int32_t>& context, size_t prompt_len);

 private:
  SamplingParams params_;
  uint64_t seed_;
  std::vector<float> scratch_;
};

}  // namespace lattice
