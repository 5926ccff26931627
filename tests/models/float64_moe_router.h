// The Hugging Face MoE router (MixtralSparseMoeBlock, Qwen3MoeSparseMoeBlock) in float64, for the reference
// forward pass (float64_reference.h) and the MoE op tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace lattice::testing {

// The Hugging Face MoE router on one token's logits: (expert, weight) of the top_k experts by softmax
// probability, ties to the lower index (torch.topk), the weights divided by their sum when renormalize.
inline std::vector<std::pair<int64_t, double>> moe_choices(const std::vector<double>& logits, int64_t top_k,
                                                           bool renormalize) {
  std::vector<double> prob(logits.size());
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t e = 0; e < prob.size(); ++e) sum += (prob[e] = std::exp(logits[e] - top));
  std::vector<int64_t> order(prob.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return prob[a] > prob[b]; });
  double picked = 0;
  for (int64_t j = 0; j < top_k; ++j) picked += prob[order[j]] / sum;
  std::vector<std::pair<int64_t, double>> out;
  for (int64_t j = 0; j < top_k; ++j) {
    const double p = prob[order[j]] / sum;
    out.emplace_back(order[j], renormalize ? p / picked : p);
  }
  return out;
}

}  // namespace lattice::testing
