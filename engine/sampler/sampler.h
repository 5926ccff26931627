// Turns one sequence's next-token logits into a token: penalties, temperature, top-k, top-p, min-p, then a
// draw from the sequence's own seeded generator (so results do not depend on batch composition).
// Log-probabilities are the model's: log-softmax of the raw logits, before penalties and temperature.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/sampler/sampling_params.h"

namespace lattice {

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0;               // of the chosen token
  std::vector<TokenLogprob> top;   // the params.logprobs most likely tokens, most likely first
};

class SequenceSampler {
 public:
  SequenceSampler(const SamplingParams& params, uint64_t seed);

  // `context` is every token so far (prompt then generated); `prompt_len` splits the two.
  SampledToken sample(const float* logits, int64_t vocab, const std::vector<int32_t>& context, size_t prompt_len);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;
};

}  // namespace lattice
