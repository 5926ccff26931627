#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lattice::kernels::cpu {

namespace {

// One (query token, head): two passes over positions [first, visible), scores kept in `scores`.
void attend_one(const float* q, const float* k_cache, const float* v_cache, const int32_t* block_table,
                int64_t first, int64_t visible, int64_t kv_head, const PagedLayout& layout, float scale,
                float* scores, float* out) {
  const int64_t hd = layout.head_dim;
  const int64_t row = layout.kv_heads * hd;
  float max_score = -INFINITY;
  for (int64_t p = first; p < visible; ++p) {
    const int64_t slot = static_cast<int64_t>(block_table[p / layout.block_size]) * layout.block_size +
                         p % layout.block_size;
    const float* k = k_cache + slot * row + kv_head * hd;
    float dot = 0;
    for (int64_t i = 0; i < hd; ++i) dot += q[i] * k[i];
    scores[p] = dot * scale;
    max_score = std::max(max_score, scores[p]);
  }
  double sum = 0;
  for (int64_t p = first; p < visible; ++p) {
    scores[p] = std::exp(scores[p] - max_score);
    sum += scores[p];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  std::fill(out, out + hd, 0.0f);
  for (int64_t p = first; p < visible; ++p) {
    const int64_t slot = static_cast<int64_t>(block_table[p / layout.block_size]) * layout.block_size +
                         p % layout.block_size;
    const float* v = v_cache + slot * row + kv_head * hd;
    const float w = scores[p] * inv_sum;
    for (int64_t i = 0; i < hd; ++i) out[i] += w * v[i];
  }
}

}  // namespace

void paged_attention_f32(const float* q, const float* k_cache, const float* v_cache, const int32_t* block_tables,
                         int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                         const int32_t* context_lens, int64_t num_seqs, float* out, const PagedLayout& layout,
                         float scale, int64_t sliding_window) {
  // Flatten (sequence, token, head) into one index space so that decode batches and prefill chunks
  // spread evenly over threads.
  std::vector<std::pair<int64_t, int64_t>> rows;  // (sequence, index of the token inside its chunk)
  int64_t max_context = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    for (int64_t j = 0; j < q_lens[s]; ++j) rows.emplace_back(s, j);
    max_context = std::max<int64_t>(max_context, context_lens[s]);
  }
  const int64_t tokens = static_cast<int64_t>(rows.size());
  const int64_t heads = layout.heads, hd = layout.head_dim;
  const int64_t group = heads / layout.kv_heads;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(std::max<int64_t>(max_context, 1)));
#pragma omp for schedule(dynamic, 4)
    for (int64_t work = 0; work < tokens * heads; ++work) {
      const auto [s, j] = rows[work / heads];
      const int64_t h = work % heads;
      const int64_t t = q_begins[s] + j;
      const int64_t visible = context_lens[s] - q_lens[s] + j + 1;
      const int64_t first = sliding_window > 0 ? std::max<int64_t>(0, visible - sliding_window) : 0;
      attend_one(q + (t * heads + h) * hd, k_cache, v_cache, block_tables + s * max_blocks_per_seq, first, visible,
                 h / group, layout, scale, scores.data(), out + (t * heads + h) * hd);
    }
  }
}

}  // namespace lattice::kernels::cpu
