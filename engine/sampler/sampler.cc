#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"
#include "kernels/cpu/penalties.h"
#include "kernels/cpu/sampling.h"
#include "kernels/sampling_rng.h"

namespace lattice {

void SamplingParams::validate(int64_t vocab_size, int32_t max_top_k) const {
  LATTICE_CHECK(max_tokens > 0, "max_tokens must be > 0, got ", max_tokens);
  LATTICE_CHECK(std::isfinite(temperature) && temperature >= 0, "temperature must be >= 0, got ", temperature);
  LATTICE_CHECK(top_k >= 0, "top_k must be >= 0 (0 disables it), got ", top_k);
  LATTICE_CHECK(max_top_k <= 0 || top_k <= max_top_k || top_k >= vocab_size, "top_k must be at most ", max_top_k,
                " when sampling on a GPU (or 0, or the vocabulary size ", vocab_size, ", for no limit), got ", top_k);
  LATTICE_CHECK(top_p > 0 && top_p <= 1, "top_p must be in (0, 1], got ", top_p);
  LATTICE_CHECK(min_p >= 0 && min_p <= 1, "min_p must be in [0, 1], got ", min_p);
  LATTICE_CHECK(std::isfinite(repetition_penalty) && repetition_penalty > 0, "repetition_penalty must be > 0, got ",
                repetition_penalty);
  LATTICE_CHECK(std::fabs(presence_penalty) <= 2, "presence_penalty must be in [-2, 2], got ", presence_penalty);
  LATTICE_CHECK(std::fabs(frequency_penalty) <= 2, "frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  LATTICE_CHECK(logprobs >= 0 && logprobs <= 20, "logprobs must be in [0, 20], got ", logprobs);
  for (int32_t t : stop_token_ids)
    LATTICE_CHECK(t >= 0 && t < vocab_size, "stop token id ", t, " is out of range for vocabulary size ", vocab_size);
}

std::string unsampleable_logits_error(kernels::cpu::LogitsCheck check, int64_t position) {
  return "the model produced non-finite logits at position " + std::to_string(position) + " (" +
         kernels::cpu::logits_check_name(check) + " after sampling penalties)";
}

SequenceSampler::SequenceSampler(const SamplingParams& params, uint64_t seed) : params_(params), seed_(seed) {}

namespace {

// log-softmax of the raw logits for the chosen token and the top-k.
void fill_logprobs(const float* logits, int64_t vocab, int32_t k, SampledToken& out) {
  const float max_logit = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_z = max_logit + std::log(sum);
  out.logprob = static_cast<float>(logits[out.token] - log_z);
  if (k == 0) return;
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t kk = std::min<int64_t>(k, vocab);
  std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (int64_t i = 0; i < kk; ++i) out.top.push_back({ids[i], static_cast<float>(logits[ids[i]] - log_z)});
}

}  // namespace

SampledToken SequenceSampler::sample(const float* logits, int64_t vocab, const std::vector<int32_t>& context,
                                     size_t prompt_len) {
  const SamplingParams& p = params_;
  LATTICE_CHECK(prompt_len <= context.size(), "prompt of ", prompt_len, " tokens in a context of ", context.size());
  scratch_.assign(logits, logits + vocab);
  float* x = scratch_.data();
  kernels::cpu::apply_penalties_f32(x, vocab, context.data(), static_cast<int64_t>(context.size()),
                                    static_cast<int64_t>(prompt_len), p.repetition_penalty, p.presence_penalty,
                                    p.frequency_penalty);
  SampledToken out;
  const kernels::cpu::LogitsCheck check = kernels::cpu::check_logits(x, vocab);
  if (check != kernels::cpu::LogitsCheck::ok) {
    out.error = unsampleable_logits_error(check, static_cast<int64_t>(context.size()));
    return out;
  }
  const uint64_t offset = context.size() - prompt_len;
  out.token = kernels::cpu::sample_token(x, vocab, {p.temperature, p.top_k, p.top_p, p.min_p},
                                         kernels::sampling_uniform(seed_, offset));
  fill_logprobs(logits, vocab, p.logprobs, out);
  return out;
}

}  // namespace lattice
