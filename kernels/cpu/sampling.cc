#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

namespace lattice::kernels::cpu {

namespace {

// tokens[i] carries weights[i]: the first token whose running weight exceeds u x the total, else the last.
int32_t walk(const std::vector<int32_t>& tokens, const std::vector<double>& weights, double u) {
  const double target = u * std::accumulate(weights.begin(), weights.end(), 0.0);
  double running = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    running += weights[i];
    if (target < running) return tokens[i];
  }
  return tokens.back();
}

int32_t sample_top_k(const float* x, int64_t vocab, const SamplingRule& rule, double u) {
  std::vector<int32_t> candidates(static_cast<size_t>(vocab));
  std::iota(candidates.begin(), candidates.end(), 0);
  std::partial_sort(candidates.begin(), candidates.begin() + rule.top_k, candidates.end(),
                    [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  candidates.resize(static_cast<size_t>(rule.top_k));
  const double top = x[candidates[0]];
  std::vector<double> weights;
  for (int32_t i : candidates) weights.push_back(std::exp((x[i] - top) / rule.temperature));
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  size_t keep = 0;
  double kept = 0;
  while (keep < weights.size()) {
    kept += weights[keep++];
    if (kept >= rule.top_p * total) break;
  }
  if (rule.min_p > 0.0f) {
    size_t n = 1;
    while (n < keep && weights[n] >= rule.min_p) ++n;
    keep = n;
  }
  candidates.resize(keep);
  weights.resize(keep);
  return walk(candidates, weights, u);
}

int32_t sample_whole_vocabulary(const float* x, int64_t vocab, const SamplingRule& rule, double u) {
  const double top = *std::max_element(x, x + vocab);
  std::vector<double> weight(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) weight[i] = std::exp((x[i] - top) / rule.temperature);
  double floor = 0;
  if (rule.top_p < 1.0f) {
    std::vector<double> sorted = weight;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    const double target = rule.top_p * std::accumulate(sorted.begin(), sorted.end(), 0.0);
    double mass = 0;
    for (double w : sorted) {
      mass += w;
      floor = w;
      if (mass >= target) break;
    }
  }
  floor = std::max(floor, static_cast<double>(rule.min_p));
  std::vector<int32_t> kept;
  std::vector<double> kept_weights;
  for (int64_t i = 0; i < vocab; ++i) {
    if (weight[i] > 0 && weight[i] >= floor) {
      kept.push_back(static_cast<int32_t>(i));
      kept_weights.push_back(weight[i]);
    }
  }
  return walk(kept, kept_weights, u);
}

}  // namespace

LogitsCheck check_logits(const float* x, int64_t vocab) {
  bool nan = false, positive_infinity = false, finite = false;
  for (int64_t i = 0; i < vocab; ++i) {
    nan = nan || std::isnan(x[i]);
    positive_infinity = positive_infinity || x[i] == INFINITY;
    finite = finite || std::isfinite(x[i]);
  }
  return classify_logits(nan, positive_infinity, finite);
}

const char* logits_check_name(LogitsCheck check) {
  switch (check) {
    case LogitsCheck::ok: return "every logit is sampleable";
    case LogitsCheck::nan: return "a logit is NaN";
    case LogitsCheck::positive_infinity: return "a logit is +inf";
    case LogitsCheck::all_negative_infinity: return "every logit is -inf";
  }
  return "unknown logits check";
}

int32_t sample_token(const float* x, int64_t vocab, const SamplingRule& rule, double u) {
  if (rule.temperature == 0.0f) return static_cast<int32_t>(std::max_element(x, x + vocab) - x);
  if (rule.top_k > 0 && rule.top_k < vocab) return sample_top_k(x, vocab, rule, u);
  return sample_whole_vocabulary(x, vocab, rule, u);
}

}  // namespace lattice::kernels::cpu
