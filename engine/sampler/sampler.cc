#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "engine/core/error.h"

namespace lattice {

void SamplingParams::validate(int64_t vocab_size) const {
  LATTICE_CHECK(max_tokens > 0, "max_tokens must be > 0, got ", max_tokens);
  LATTICE_CHECK(std::isfinite(temperature) && temperature >= 0, "temperature must be >= 0, got ", temperature);
  LATTICE_CHECK(top_k >= 0, "top_k must be >= 0 (0 disables it), got ", top_k);
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

SequenceSampler::SequenceSampler(const SamplingParams& params, uint64_t seed) : params_(params), rng_(seed) {}

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
  scratch_.assign(logits, logits + vocab);
  float* x = scratch_.data();

  if (p.repetition_penalty != 1.0f) {
    std::vector<bool> seen(vocab, false);
    for (int32_t t : context) seen[t] = true;
    for (int64_t i = 0; i < vocab; ++i)
      if (seen[i]) x[i] = x[i] > 0 ? x[i] / p.repetition_penalty : x[i] * p.repetition_penalty;
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (size_t i = prompt_len; i < context.size(); ++i) ++counts[context[i]];
    for (const auto& [token, n] : counts) x[token] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(n);
  }

  for (int64_t i = 0; i < vocab; ++i)
    LATTICE_CHECK(std::isfinite(x[i]), "logit ", i, " is ", x[i], ": the model produced non-finite logits");
  SampledToken out;
  if (p.temperature == 0.0f || p.top_k == 1) {
    out.token = static_cast<int32_t>(std::max_element(x, x + vocab) - x);  // first maximum on ties
  } else {
    // Candidates sorted by adjusted logit; the filters only ever cut a suffix of this order.
    std::vector<int32_t> ids(vocab);
    std::iota(ids.begin(), ids.end(), 0);
    int64_t keep = p.top_k > 0 ? std::min<int64_t>(p.top_k, vocab) : vocab;
    auto by_logit = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
    std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), by_logit);
    std::vector<double> probs(keep);
    const double top = x[ids[0]];
    double sum = 0;
    for (int64_t i = 0; i < keep; ++i) sum += probs[i] = std::exp((x[ids[i]] - top) / p.temperature);
    for (double& q : probs) q /= sum;
    if (p.top_p < 1.0f) {
      double mass = 0;
      int64_t n = 0;
      while (n < keep && mass < p.top_p) mass += probs[n++];
      keep = std::max<int64_t>(n, 1);
    }
    if (p.min_p > 0.0f) {
      int64_t n = 1;
      while (n < keep && probs[n] >= p.min_p * probs[0]) ++n;
      keep = n;
    }
    double total = 0;
    for (int64_t i = 0; i < keep; ++i) total += probs[i];
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;  // uniform in [0, total)
    double acc = 0;
    out.token = ids[keep - 1];
    for (int64_t i = 0; i < keep; ++i) {
      acc += probs[i];
      if (u < acc) {
        out.token = ids[i];
        break;
      }
    }
  }
  fill_logprobs(logits, vocab, p.logprobs, out);
  return out;
}

}  // namespace lattice
