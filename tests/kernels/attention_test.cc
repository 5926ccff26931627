// Paged attention against a float64 dense causal attention with GQA, over mixed prefill chunks and
// decode tokens, block sizes that do and do not divide the context, and scrambled block tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/ops/attention.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

struct SeqSpec {
  int64_t past;  // tokens already cached
  int64_t new_tokens;
};

// Dense reference over the full K/V history of one sequence: [context, kv_heads, hd].
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              int64_t past, int64_t n, int64_t heads, int64_t kv_heads, int64_t hd) {
  std::vector<double> out(n * heads * hd, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / (heads / kv_heads), visible = past + j + 1;
      std::vector<double> s(visible);
      double mx = -1e300, sum = 0;
      for (int64_t p = 0; p < visible; ++p) {
        double dot = 0;
        for (int64_t i = 0; i < hd; ++i) dot += static_cast<double>(q[(j * heads + h) * hd + i]) * k[(p * kv_heads + g) * hd + i];
        s[p] = dot * scale;
        mx = std::max(mx, s[p]);
      }
      for (double& x : s) sum += x = std::exp(x - mx);
      for (int64_t p = 0; p < visible; ++p)
        for (int64_t i = 0; i < hd; ++i) out[(j * heads + h) * hd + i] += s[p] / sum * v[(p * kv_heads + g) * hd + i];
    }
  return out;
}

void run_case(const std::vector<SeqSpec>& specs, int64_t heads, int64_t kv_heads, int64_t hd, int64_t block_size,
              uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  const int64_t num_blocks = 64;
  Tensor k_cache = testing::poisoned_tensor({num_blocks, block_size, kv_heads, hd});
  Tensor v_cache = testing::poisoned_tensor({num_blocks, block_size, kv_heads, hd});
  // Scrambled, non-contiguous block ids shared out to the sequences.
  std::vector<int32_t> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  size_t next_block = 0;

  // History K/V per sequence (float64 reference sees the same values the cache holds).
  std::vector<std::vector<float>> hist_k(specs.size()), hist_v(specs.size());
  StepBatch batch;
  for (size_t s = 0; s < specs.size(); ++s) {
    const int64_t ctx = specs[s].past + specs[s].new_tokens;
    SequenceStep step;
    step.seq_id = static_cast<int64_t>(s);
    step.start_pos = specs[s].past;
    step.tokens.assign(specs[s].new_tokens, 0);
    for (int64_t b = 0; b < (ctx + block_size - 1) / block_size; ++b) step.block_table.push_back(pool[next_block++]);
    hist_k[s].resize(ctx * kv_heads * hd);
    hist_v[s].resize(ctx * kv_heads * hd);
    for (float& x : hist_k[s]) x = dist(rng);
    for (float& x : hist_v[s]) x = dist(rng);
    // Pre-fill the cache with the past tokens, as earlier steps would have.
    const int64_t row = kv_heads * hd;
    for (int64_t p = 0; p < specs[s].past; ++p) {
      const int64_t slot = static_cast<int64_t>(step.block_table[p / block_size]) * block_size + p % block_size;
      std::copy_n(&hist_k[s][p * row], row, k_cache.data<float>() + slot * row);
      std::copy_n(&hist_v[s][p * row], row, v_cache.data<float>() + slot * row);
    }
    batch.seqs.push_back(std::move(step));
  }
  const int64_t tokens = batch.num_tokens();
  Tensor q = testing::random_tensor({tokens, heads, hd}, rng);
  Tensor k = Tensor::empty({tokens, kv_heads, hd}, DType::f32), v = Tensor::empty({tokens, kv_heads, hd}, DType::f32);
  int64_t row = 0;
  for (size_t s = 0; s < specs.size(); ++s)
    for (int64_t j = 0; j < specs[s].new_tokens; ++j, ++row) {
      std::copy_n(&hist_k[s][(specs[s].past + j) * kv_heads * hd], kv_heads * hd, k.data<float>() + row * kv_heads * hd);
      std::copy_n(&hist_v[s][(specs[s].past + j) * kv_heads * hd], kv_heads * hd, v.data<float>() + row * kv_heads * hd);
    }
  Tensor out = testing::poisoned_tensor({tokens, heads, hd});
  const ops::AttentionMetadata meta(batch, block_size, num_blocks);
  ops::paged_attention(q, k, v, meta, k_cache, v_cache, static_cast<float>(1.0 / std::sqrt(hd)), out);

  row = 0;
  for (size_t s = 0; s < specs.size(); ++s) {
    const int64_t n = specs[s].new_tokens;
    std::vector<float> qs(q.data<float>() + row * heads * hd, q.data<float>() + (row + n) * heads * hd);
    const std::vector<double> want = reference(qs, hist_k[s], hist_v[s], specs[s].past, n, heads, kv_heads, hd);
    // Softmax-weighted sums of unit-normal values over <= 200 positions: f32 error ~1e-6.
    EXPECT_TRUE(testing::all_close(out.data<float>() + row * heads * hd, want.data(), n * heads * hd, 1e-4, 2e-5))
        << "sequence " << s << " (past " << specs[s].past << ", new " << n << ")";
    row += n;
  }
}

TEST(PagedAttention, MixedPrefillAndDecodeMatchDenseReference) {
  run_case({{0, 13}, {20, 1}, {5, 7}, {31, 1}}, 8, 4, 16, 16, 1);
}

TEST(PagedAttention, OddShapesAndBlockSizes) {
  run_case({{0, 1}}, 1, 1, 2, 1, 2);
  run_case({{3, 50}, {0, 33}}, 6, 2, 24, 5, 3);
  run_case({{199, 1}, {0, 1}, {17, 17}}, 4, 4, 64, 16, 4);
}

TEST(PagedAttention, GroupOfEightQueryHeadsShareOneKvHead) {
  run_case({{10, 4}, {0, 9}}, 8, 1, 32, 8, 5);
}

TEST(PagedAttention, RejectsBlockTablesThatDoNotCoverTheContext) {
  StepBatch batch;
  batch.seqs.push_back({0, {1, 2, 3}, 15, {0}, false});  // 18 tokens need 2 blocks of 16
  EXPECT_THROW(ops::AttentionMetadata(batch, 16, 4), Error);
  batch.seqs[0].block_table = {0, 9};  // block 9 does not exist
  EXPECT_THROW(ops::AttentionMetadata(batch, 16, 4), Error);
}

}  // namespace
}  // namespace lattice
