// Paged attention against a float64 dense causal attention with GQA, over mixed prefill chunks and decode
// tokens, block sizes that do and do not divide the context, scrambled block tables, and padded bounds
// (block tables wider and max_context_len / max_q_len larger than the step needs, as a CUDA graph fixes them).
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

// Dense reference over the full K/V history of one sequence: [context, kv_heads, hd]; window > 0 masks every
// position more than window - 1 before the query's (Mistral's sliding window).
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              int64_t past, int64_t n, int64_t heads, int64_t kv_heads, int64_t hd, int64_t window) {
  std::vector<double> out(n * heads * hd, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / (heads / kv_heads), visible = past + j + 1;
      std::vector<double> s(visible);
      double mx = -1e300, sum = 0;
      for (int64_t p = 0; p < visible; ++p) {
        if (window > 0 && p < visible - window) {
          s[p] = -INFINITY;
          continue;
        }
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

// The metadata of a step as host tensors, with `extra_blocks` unused columns in each block table row and
// bounds raised by `extra_context` / `extra_q`.
struct Step {
  ops::AttentionInputs in;
  std::vector<std::vector<int32_t>> tables;  // each sequence's blocks
};

Step make_step(const std::vector<SeqSpec>& specs, int64_t block_size, std::vector<int32_t>& pool, int64_t extra_blocks,
               int64_t extra_context, int64_t extra_q) {
  Step step;
  std::vector<int32_t> q_begins, q_lens, context_lens;
  int64_t max_blocks = 0, row = 0, max_q = 0, max_context = 0;
  size_t next_block = 0;
  for (const SeqSpec& s : specs) {
    const int64_t ctx = s.past + s.new_tokens;
    std::vector<int32_t> table;
    for (int64_t b = 0; b < (ctx + block_size - 1) / block_size; ++b) table.push_back(pool[next_block++]);
    max_blocks = std::max<int64_t>(max_blocks, static_cast<int64_t>(table.size()));
    step.tables.push_back(std::move(table));
    q_begins.push_back(static_cast<int32_t>(row));
    q_lens.push_back(static_cast<int32_t>(s.new_tokens));
    context_lens.push_back(static_cast<int32_t>(ctx));
    row += s.new_tokens;
    max_q = std::max(max_q, s.new_tokens);
    max_context = std::max(max_context, ctx);
  }
  max_blocks += extra_blocks;
  std::vector<int32_t> padded(specs.size() * max_blocks, 0);
  for (size_t s = 0; s < specs.size(); ++s) std::copy(step.tables[s].begin(), step.tables[s].end(), &padded[s * max_blocks]);
  const int64_t seqs = static_cast<int64_t>(specs.size());
  step.in.block_tables = Tensor::from_vector(padded, {seqs, max_blocks});
  step.in.q_begins = Tensor::from_vector(q_begins, {seqs});
  step.in.q_lens = Tensor::from_vector(q_lens, {seqs});
  step.in.context_lens = Tensor::from_vector(context_lens, {seqs});
  step.in.max_q_len = max_q + extra_q;
  step.in.max_context_len = std::min(max_context + extra_context, max_blocks * block_size);
  return step;
}

void run_case(const std::vector<SeqSpec>& specs, int64_t heads, int64_t kv_heads, int64_t hd, int64_t block_size,
              uint32_t seed, int64_t extra_blocks = 0, int64_t extra_context = 0, int64_t window = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  int64_t needed = 0;
  for (const SeqSpec& s : specs) needed += (s.past + s.new_tokens + block_size - 1) / block_size;
  const int64_t num_blocks = std::max<int64_t>(64, needed);
  Tensor k_cache = testing::poisoned_tensor({num_blocks, block_size, kv_heads, hd});
  Tensor v_cache = testing::poisoned_tensor({num_blocks, block_size, kv_heads, hd});
  // Scrambled, non-contiguous block ids shared out to the sequences.
  std::vector<int32_t> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  Step step = make_step(specs, block_size, pool, extra_blocks, extra_context, /*extra_q=*/extra_blocks);
  step.in.sliding_window = window;

  // The whole K/V history of each sequence, this step's tokens included, sits in the cache (rope_write_kv
  // wrote the new tokens before attention runs); the float64 reference sees the same values.
  const int64_t row = kv_heads * hd;
  std::vector<std::vector<float>> hist_k(specs.size()), hist_v(specs.size());
  for (size_t s = 0; s < specs.size(); ++s) {
    const int64_t ctx = specs[s].past + specs[s].new_tokens;
    hist_k[s].resize(ctx * row);
    hist_v[s].resize(ctx * row);
    for (float& x : hist_k[s]) x = dist(rng);
    for (float& x : hist_v[s]) x = dist(rng);
    for (int64_t p = 0; p < ctx; ++p) {
      const int64_t slot = static_cast<int64_t>(step.tables[s][p / block_size]) * block_size + p % block_size;
      std::copy_n(&hist_k[s][p * row], row, k_cache.data<float>() + slot * row);
      std::copy_n(&hist_v[s][p * row], row, v_cache.data<float>() + slot * row);
    }
  }
  int64_t tokens = 0;
  for (const SeqSpec& s : specs) tokens += s.new_tokens;
  Tensor q = testing::random_tensor({tokens, heads, hd}, rng);
  Tensor out = testing::poisoned_tensor({tokens, heads, hd});
  ops::paged_attention(ops::ExecContext::cpu(), q, k_cache, v_cache, step.in, static_cast<float>(1.0 / std::sqrt(hd)),
                       out);

  int64_t begin = 0;
  for (size_t s = 0; s < specs.size(); ++s) {
    const int64_t n = specs[s].new_tokens;
    std::vector<float> qs(q.data<float>() + begin * heads * hd, q.data<float>() + (begin + n) * heads * hd);
    const std::vector<double> want =
        reference(qs, hist_k[s], hist_v[s], specs[s].past, n, heads, kv_heads, hd, window);
    // Softmax-weighted sums of unit-normal values over <= 800 positions: f32 error ~1e-6.
    EXPECT_TRUE(testing::all_close(out.data<float>() + begin * heads * hd, want.data(), n * heads * hd, 1e-4, 2e-5))
        << "sequence " << s << " (past " << specs[s].past << ", new " << n << ")";
    begin += n;
  }
}

TEST(PagedAttention, MixedPrefillAndDecodeMatchDenseReference) {
  run_case({{0, 13}, {20, 1}, {5, 7}, {31, 1}}, 8, 4, 16, 16, 1);
}

// Mistral's sliding window: prefill chunks longer than the window, chunks after a cached past that reaches past
// it, decode tokens far past it, and a window of 1 (each row sees itself only); a window longer than every context
// masks nothing.
TEST(PagedAttention, SlidingWindowMasksPositionsBeforeIt) {
  run_case({{0, 13}, {20, 1}, {5, 7}, {31, 1}}, 8, 4, 16, 16, 11, 0, 0, /*window=*/4);
  run_case({{3, 50}, {0, 33}, {100, 1}}, 6, 2, 24, 5, 12, 2, 9, /*window=*/17);
  run_case({{9, 6}, {0, 1}}, 4, 1, 8, 4, 13, 0, 0, /*window=*/1);
  run_case({{10, 4}, {0, 9}}, 8, 1, 32, 8, 14, 0, 0, /*window=*/1000);
}

// Contexts longer than one key chunk (256 positions, so the online softmax rescales rows when a later chunk
// raises their max) and prompts longer than one query tile (128 packed rows: 64 tokens of a group of 2, 16 of a
// group of 8), with tiles whose rows see different numbers of keys in a chunk; a window starting inside a chunk.
TEST(PagedAttention, LongContextsAcrossKeyChunksAndQueryTiles) {
  run_case({{0, 300}, {520, 1}, {250, 70}}, 4, 2, 16, 16, 21);
  run_case({{0, 140}, {600, 3}}, 8, 1, 8, 32, 22, 0, 0, /*window=*/300);
  run_case({{257, 1}, {0, 257}}, 2, 2, 64, 16, 23);
}

TEST(PagedAttention, OddShapesAndBlockSizes) {
  run_case({{0, 1}}, 1, 1, 2, 1, 2);
  run_case({{3, 50}, {0, 33}}, 6, 2, 24, 5, 3);
  run_case({{199, 1}, {0, 1}, {17, 17}}, 4, 4, 64, 16, 4);
}

TEST(PagedAttention, GroupOfEightQueryHeadsShareOneKvHead) {
  run_case({{10, 4}, {0, 9}}, 8, 1, 32, 8, 5);
}

// Bounds fixed ahead of the step: three spare block-table columns (zeros), max_context_len and max_q_len above
// every sequence's. The padding must not change what any sequence sees.
TEST(PagedAttention, PaddedBoundsGiveTheSameResult) {
  run_case({{0, 5}, {40, 1}, {7, 3}}, 4, 2, 16, 8, 6, /*extra_blocks=*/3, /*extra_context=*/20);
  run_case({{63, 1}, {2, 1}}, 2, 1, 8, 4, 7, /*extra_blocks=*/5, /*extra_context=*/17);
}

TEST(PagedAttention, RejectsMetadataOutsideTheCacheOrTheBounds) {
  std::vector<int32_t> pool = {0, 1, 2, 3};
  const Tensor cache = Tensor::zeros({4, 16, 1, 8}, DType::f32);
  const Tensor q = Tensor::zeros({3, 1, 8}, DType::f32);
  Tensor out = Tensor::zeros({3, 1, 8}, DType::f32);
  const auto message = [&](const Step& step) -> std::string {
    try {
      ops::paged_attention(ops::ExecContext::cpu(), q, cache, cache, step.in, 1.0f, out);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  Step step = make_step({{15, 3}}, 16, pool, 0, 0, 0);  // 18 tokens in 2 blocks
  step.in.block_tables.data<int32_t>()[1] = 9;          // block 9 does not exist
  EXPECT_NE(message(step).find("block 9 is outside the cache's 4 blocks"), std::string::npos) << message(step);
  step = make_step({{15, 3}}, 16, pool, 0, 0, 0);
  step.in.max_context_len = 17;  // below the sequence's 18 positions
  EXPECT_NE(message(step).find("context of 18 (bounds 3 and 17)"), std::string::npos) << message(step);
  step = make_step({{15, 3}}, 16, pool, 0, 0, 0);
  step.in.max_context_len = 33;  // more than 2 blocks of 16 hold
  EXPECT_NE(message(step).find("block tables of 2 blocks of 16 positions cannot hold max_context_len 33"),
            std::string::npos)
      << message(step);
  step = make_step({{15, 3}}, 16, pool, 0, 0, 0);
  step.in.q_begins.data<int32_t>()[0] = 1;  // rows [1, 4) of a 3-row q
  EXPECT_NE(message(step).find("owns q rows [1, 4), q has 3"), std::string::npos) << message(step);
}

}  // namespace
}  // namespace lattice
