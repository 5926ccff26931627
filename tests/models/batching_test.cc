// The step API's batching contract on the tiny-llama fixture: a sequence's logits do not depend on what else
// is in the batch, where its KV blocks live, or how its prompt is chunked.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "models/llama.h"
#include "tests/models/run_step.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

// Batch composition only changes GEMM blocking (the row count), so logits agree to f32 rounding:
// measured ~1e-7 relative; the bound is 1e-5.
constexpr double kBatchRelTol = 1e-5;

class Batching : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = LlamaModel::load(testing::data_dir() + "/tiny-llama/f32").release(); }
  static void TearDownTestSuite() { delete model_; }

  // Contiguous block ids [first, first + n) for a sequence of up to n * 16 tokens.
  static std::vector<int32_t> blocks(int32_t first, int32_t n) {
    std::vector<int32_t> b(n);
    std::iota(b.begin(), b.end(), first);
    return b;
  }

  static std::vector<int32_t> tokens(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = static_cast<int32_t>(rng() % 512);
    return t;
  }

  // Logits for every token of `seq` fed in chunks of `chunk` tokens, alone in the batch.
  static std::vector<std::vector<float>> alone(const std::vector<int32_t>& seq, std::vector<int32_t> table,
                                               int64_t chunk) {
    KvCache cache(model_->lm_shape().kv, 64);
    std::vector<std::vector<float>> rows;
    for (int64_t start = 0; start < static_cast<int64_t>(seq.size()); start += chunk) {
      const int64_t end = std::min<int64_t>(start + chunk, static_cast<int64_t>(seq.size()));
      StepBatch b;
      b.seqs.push_back({0, std::vector<int32_t>(seq.begin() + start, seq.begin() + end), start, table, true});
      const StepOutput out = testing::forward(*model_, cache, b);
      for (int64_t r = 0; r < out.logits.dim(0); ++r)
        rows.emplace_back(out.logits.data<float>() + r * 512, out.logits.data<float>() + (r + 1) * 512);
    }
    return rows;
  }

  static void expect_close_rows(const float* got, const std::vector<float>& want, double tol, const std::string& where) {
    EXPECT_LT(testing::rel_l2(got, want.data(), 512), tol) << where;
  }

  static LlamaModel* model_;
};
LlamaModel* Batching::model_ = nullptr;

TEST_F(Batching, MixedPrefillAndDecodeBatchEqualsEachSequenceAlone) {
  // Three sequences of different lengths: A prefills alone, then decodes while B and C prefill beside it.
  const auto a = tokens(40, 1), b = tokens(23, 2), c = tokens(9, 3);
  const auto ref_a = alone(a, blocks(0, 4), 64), ref_b = alone(b, blocks(0, 4), 64), ref_c = alone(c, blocks(0, 4), 64);

  KvCache cache(model_->lm_shape().kv, 64);
  const auto ta = blocks(0, 4), tb = blocks(10, 4), tc = blocks(20, 4);
  StepBatch s1;  // A: 37-token prefill; B: first 5 tokens
  s1.seqs.push_back({0, {a.begin(), a.begin() + 37}, 0, ta, true});
  s1.seqs.push_back({1, {b.begin(), b.begin() + 5}, 0, tb, true});
  StepOutput o1 = testing::forward(*model_, cache, s1);
  for (int r = 0; r < 37; ++r) expect_close_rows(o1.logits.data<float>() + r * 512, ref_a[r], kBatchRelTol, "A prefill");
  for (int r = 0; r < 5; ++r)
    expect_close_rows(o1.logits.data<float>() + (37 + r) * 512, ref_b[r], kBatchRelTol, "B chunk 1");

  StepBatch s2;  // A decodes one token, B finishes its prompt, C prefills whole, in one step
  s2.seqs.push_back({0, {a[37]}, 37, ta, false});
  s2.seqs.push_back({1, {b.begin() + 5, b.end()}, 5, tb, true});
  s2.seqs.push_back({2, c, 0, tc, false});
  StepOutput o2 = testing::forward(*model_, cache, s2);
  ASSERT_EQ(o2.logits.dim(0), 1 + 18 + 1);
  expect_close_rows(o2.next_token_logits(0).data<float>(), ref_a[37], kBatchRelTol, "A decode");
  for (int r = 0; r < 18; ++r)
    expect_close_rows(o2.logits.data<float>() + (1 + r) * 512, ref_b[5 + r], kBatchRelTol, "B chunk 2");
  expect_close_rows(o2.next_token_logits(2).data<float>(), ref_c.back(), kBatchRelTol, "C prefill");

  StepBatch s3;  // decode all three together
  s3.seqs.push_back({0, {a[38]}, 38, ta, false});
  s3.seqs.push_back({2, {b[0]}, 9, tc, false});
  StepOutput o3 = testing::forward(*model_, cache, s3);
  expect_close_rows(o3.next_token_logits(0).data<float>(), ref_a[38], kBatchRelTol, "A decode 2");
  const auto ref_c2 = alone([&] { auto x = c; x.push_back(b[0]); return x; }(), blocks(0, 4), 64);
  expect_close_rows(o3.next_token_logits(1).data<float>(), ref_c2.back(), kBatchRelTol, "C decode");
}

TEST_F(Batching, ScrambledBlockTableGivesIdenticalLogits) {
  const auto seq = tokens(70, 4);
  const auto contiguous = alone(seq, blocks(0, 5), 64);
  const std::vector<int32_t> scrambled = {41, 3, 63, 17, 8};
  const auto moved = alone(seq, scrambled, 64);
  for (size_t r = 0; r < seq.size(); ++r)
    EXPECT_TRUE(testing::all_close(moved[r].data(), contiguous[r].data(), 512, 0, 0)) << "position " << r;
}

TEST_F(Batching, ChunkedPrefillEqualsOneShot) {
  const auto seq = tokens(100, 5);
  const auto one_shot = alone(seq, blocks(0, 7), 100);
  for (const int64_t chunk : {1, 7, 64}) {
    const auto chunked = alone(seq, blocks(0, 7), chunk);
    ASSERT_EQ(chunked.size(), one_shot.size());
    for (size_t r = 0; r < seq.size(); ++r)
      expect_close_rows(chunked[r].data(), one_shot[r], kBatchRelTol,
                        "chunk " + std::to_string(chunk) + " position " + std::to_string(r));
  }
}

}  // namespace
}  // namespace lattice
