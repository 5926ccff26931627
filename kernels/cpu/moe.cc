#include "kernels/cpu/moe.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lattice::kernels::cpu {

void moe_route_f32(const float* logits, int32_t* ids, float* weights, int64_t tokens, int64_t experts, int64_t top_k,
                   bool renormalize) {
  std::vector<float> p(static_cast<size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    const float* l = logits + t * experts;
    float top = l[0], sum = 0;
    for (int64_t e = 1; e < experts; ++e) top = std::max(top, l[e]);
    for (int64_t e = 0; e < experts; ++e) sum += (p[e] = std::exp(l[e] - top));
    for (int64_t e = 0; e < experts; ++e) p[e] /= sum;
    // k passes, each taking the best expert after the previous pick in (p descending, index ascending) order.
    float prev_p = INFINITY, picked = 0;
    int64_t prev_e = -1;
    for (int64_t j = 0; j < top_k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < experts; ++e) {
        const bool after_prev = p[e] < prev_p || (p[e] == prev_p && e > prev_e);
        if (after_prev && (best < 0 || p[e] > p[best])) best = e;
      }
      ids[t * top_k + j] = static_cast<int32_t>(best);
      weights[t * top_k + j] = p[best];
      picked += p[best];
      prev_p = p[best];
      prev_e = best;
    }
    if (renormalize)
      for (int64_t j = 0; j < top_k; ++j) weights[t * top_k + j] /= picked;
  }
}

void moe_group(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t expert_begin, int64_t expert_end,
               int32_t* rows, int32_t* positions, int64_t* offsets) {
  const int64_t local = expert_end - expert_begin, n = tokens * top_k;
  for (int64_t e = 0; e <= local; ++e) offsets[e] = 0;
  for (int64_t a = 0; a < n; ++a)
    if (ids[a] >= expert_begin && ids[a] < expert_end) ++offsets[ids[a] - expert_begin + 1];
  for (int64_t e = 0; e < local; ++e) offsets[e + 1] += offsets[e];
  std::vector<int64_t> next(offsets, offsets + local);
  for (int64_t a = 0; a < n; ++a) {
    if (ids[a] < expert_begin || ids[a] >= expert_end) {
      positions[a] = -1;
      continue;
    }
    const int64_t slot = next[ids[a] - expert_begin]++;
    rows[slot] = static_cast<int32_t>(a / top_k);
    positions[a] = static_cast<int32_t>(slot);
  }
}

void moe_combine_f32(const float* expert_out, const int32_t* positions, const float* weights, float* out,
                     int64_t tokens, int64_t top_k, int64_t dim) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    float* o = out + t * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = 0;
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t slot = positions[t * top_k + j];
      if (slot < 0) continue;
      const float w = weights[t * top_k + j];
      const float* src = expert_out + static_cast<int64_t>(slot) * dim;
      for (int64_t i = 0; i < dim; ++i) o[i] += w * src[i];
    }
  }
}

}  // namespace lattice::kernels::cpu
