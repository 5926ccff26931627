// The MoE ops (engine/ops/moe.h) on the CPU: routing against the float64 Hugging Face router
// (tests/models/float64_moe_router.h) on random logits and on ties, the grouping's exact layout for all
// experts and for one rank's range, and the combine against float64.
// Tolerances: a softmax over <= 8 f32 logits and a renormalisation are within a few f32 ulps (~1e-7) of
// float64: 1e-6 relative. The combine sums <= 3 f32 products: 1e-6 relative plus 1e-7 absolute near zero.
#include <gtest/gtest.h>

#include "engine/ops/moe.h"
#include "tests/models/float64_moe_router.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

using testing::all_close;
using testing::random_tensor;

const ops::ExecContext kCpu = ops::ExecContext::cpu();

struct Routed {
  Tensor ids, weights;
};

Routed route(const Tensor& logits, int64_t top_k, bool renormalize) {
  Routed r{Tensor::empty({logits.dim(0), top_k}, DType::i32), Tensor::empty({logits.dim(0), top_k}, DType::f32)};
  ops::moe_route(kCpu, logits, renormalize, r.ids, r.weights);
  return r;
}

void expect_reference_routing(const Tensor& logits, int64_t top_k, bool renormalize) {
  const Routed got = route(logits, top_k, renormalize);
  const int64_t experts = logits.dim(1);
  for (int64_t t = 0; t < logits.dim(0); ++t) {
    const std::vector<double> row(logits.data<float>() + t * experts, logits.data<float>() + (t + 1) * experts);
    const auto want = testing::moe_choices(row, top_k, renormalize);
    for (int64_t j = 0; j < top_k; ++j) {
      EXPECT_EQ(got.ids.data<int32_t>()[t * top_k + j], want[j].first) << "token " << t << " pick " << j;
      EXPECT_NEAR(got.weights.data<float>()[t * top_k + j], want[j].second, 1e-6 * want[j].second)
          << "token " << t << " pick " << j;
    }
  }
}

TEST(MoeOps, RouteMatchesFloat64) {
  std::mt19937 rng(11);
  const Tensor logits = random_tensor({9, 8}, rng, 2.0f);
  for (int64_t top_k : {1, 2, 3, 8})
    for (bool renormalize : {false, true}) expect_reference_routing(logits, top_k, renormalize);
}

// Equal probabilities go to the lower index first, as torch.topk does: a row of equal logits picks 0, 1, 2,
// and a row whose two largest are equal (at 5 and 2) picks 2, then 5, then the next (7).
TEST(MoeOps, RouteBreaksTiesTowardsTheLowerIndex) {
  const Tensor logits = Tensor::from_vector<float>({0, 0, 0, 0, 0, 0, 0, 0,  //
                                                    -1, 0, 3, -2, 1, 3, 0, 2},
                                                   {2, 8});
  const Routed r = route(logits, 3, true);
  EXPECT_EQ(to_vector<int32_t>(r.ids), (std::vector<int32_t>{0, 1, 2, 2, 5, 7}));
  for (int64_t j = 0; j < 3; ++j) EXPECT_FLOAT_EQ(r.weights.data<float>()[j], 1.0f / 3);
  expect_reference_routing(logits, 3, true);
  expect_reference_routing(logits, 3, false);
}

// Assignments a = t * 2 + j of 5 tokens over experts 0..3, grouped by expert then token: all experts, and the
// second of two expert-parallel ranks (experts [2, 4)).
TEST(MoeOps, GroupOrdersSlotsByExpertThenToken) {
  const Tensor ids = Tensor::from_vector<int32_t>({3, 0, 0, 2, 3, 2, 1, 0, 3, 2}, {5, 2});
  Tensor rows = Tensor::empty({10}, DType::i32), positions = Tensor::empty({5, 2}, DType::i32);
  Tensor offsets = Tensor::empty({5}, DType::i64);
  EXPECT_EQ(ops::moe_group(kCpu, ids, 0, 4, rows, positions, offsets), (std::vector<int64_t>{0, 3, 4, 7, 10}));
  // expert 0: tokens 0, 1, 3; expert 1: token 3; expert 2: tokens 1, 2, 4; expert 3: tokens 0, 2, 4.
  EXPECT_EQ(to_vector<int32_t>(rows), (std::vector<int32_t>{0, 1, 3, 3, 1, 2, 4, 0, 2, 4}));
  EXPECT_EQ(to_vector<int32_t>(positions), (std::vector<int32_t>{7, 0, 1, 4, 8, 5, 3, 2, 9, 6}));

  Tensor half_offsets = Tensor::empty({3}, DType::i64);
  EXPECT_EQ(ops::moe_group(kCpu, ids, 2, 4, rows, positions, half_offsets), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(to_vector<int32_t>(rows.rows(0, 6)), (std::vector<int32_t>{1, 2, 4, 0, 2, 4}));
  EXPECT_EQ(to_vector<int32_t>(positions), (std::vector<int32_t>{3, -1, -1, 0, 4, 1, -1, -1, 5, 2}));
}

TEST(MoeOps, CombineMatchesFloat64) {
  std::mt19937 rng(5);
  const int64_t tokens = 4, top_k = 3, dim = 37;
  const Tensor expert_out = random_tensor({9, dim}, rng);
  const std::vector<int32_t> slot = {8, 0, 3, -1, 2, 7, -1, -1, -1, 1, 6, 4};  // token 2 has no slot here
  const Tensor positions = Tensor::from_vector(slot, {tokens, top_k});
  const Tensor weights = random_tensor({tokens, top_k}, rng);
  Tensor out = testing::poisoned_tensor({tokens, dim});
  ops::moe_combine(kCpu, expert_out, positions, weights, out);
  std::vector<double> want(tokens * dim, 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < top_k; ++j)
      if (slot[t * top_k + j] >= 0)
        for (int64_t i = 0; i < dim; ++i)
          want[t * dim + i] += static_cast<double>(weights.data<float>()[t * top_k + j]) *
                               expert_out.data<float>()[slot[t * top_k + j] * dim + i];
  EXPECT_TRUE(all_close(out.data<float>(), want.data(), tokens * dim, 1e-6, 1e-7));
}

TEST(MoeOps, RefuseMismatchedOperands) {
  const Tensor logits = Tensor::zeros({2, 4}, DType::f32);
  Tensor ids = Tensor::empty({2, 5}, DType::i32), weights = Tensor::empty({2, 5}, DType::f32);
  EXPECT_THROW(
      {
        try {
          ops::moe_route(kCpu, logits, true, ids, weights);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("top_k 5 must be in [1, 4 experts]"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  Tensor rows = Tensor::empty({4}, DType::i32), positions = Tensor::empty({2, 2}, DType::i32);
  Tensor offsets = Tensor::empty({3}, DType::i64);
  const Tensor two_ids = Tensor::zeros({2, 2}, DType::i32);
  EXPECT_THROW(ops::moe_group(kCpu, two_ids, 0, 4, rows, positions, offsets), Error);
}

}  // namespace
}  // namespace lattice
