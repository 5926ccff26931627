// Per-request sampling settings.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace lattice {

struct SamplingParams {
  float temperature = 1.0f;         // 0 selects greedy decoding
  int32_t top_k = 0;                // keep the k <= 64 most likely tokens; 0 (or >= the vocabulary) = all
  float top_p = 1.0f;               // keep the smallest set whose probability reaches top_p
  float min_p = 0.0f;               // drop tokens below min_p x the top token's probability
  float repetition_penalty = 1.0f;  // HF-style, over prompt and generated tokens
  float presence_penalty = 0.0f;    // OpenAI-style, over generated tokens
  float frequency_penalty = 0.0f;   // OpenAI-style, over generated tokens
  std::optional<uint64_t> seed;     // same seed, same output; unset = derived from the request id
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t max_tokens = 16;
  int32_t logprobs = 0;             // top-K log-probabilities reported per generated token

  // Throws naming the first invalid field. `max_top_k` > 0 (an engine sampling on a GPU: its kMaxTopK): the
  // sampler selects by rank only up to that many candidates, so a larger top_k short of the vocabulary is refused.
  void validate(int64_t vocab_size, int32_t max_top_k = 0) const;
  // Whether the draw reads the sequence's context (repetition, presence or frequency penalty).
  bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

}  // namespace lattice
