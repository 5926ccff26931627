// The sparse MoE MLP (models/sparse_moe.h) on random inputs against a float64 MoE block (the router of
// tests/models/float64_reference.h, then the chosen experts' SwiGLU in float64), with and without renormalised
// top-k weights, over batches where some experts get no token; and its two parallel layouts: the experts split
// whole over two "ranks" (expert parallelism) or each expert split by column / row (tensor parallelism), whose
// partial outputs sum to the whole block's, the sum the model's all-reduce takes. Loading: under expert
// parallelism a rank reads its own experts whole and no other expert; without it, a slice of every expert.
//
// Tolerance: f32 GEMMs over <= 48 terms and a softmax over 6 logits stay within ~1e-6 relative of float64;
// 2e-5 relative L2 leaves margin. The parallel sums change only the f32 summation order: 1e-5.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>
#include <unistd.h>

#include "engine/ops/ops.h"
#include "models/random_checkpoint.h"
#include "models/sparse_moe.h"
#include "tests/models/float64_reference.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

constexpr int64_t kHidden = 24, kInter = 16, kExperts = 6;
const ops::ExecContext kCpu = ops::ExecContext::cpu();

ModelConfig moe_config(int64_t top_k, bool renormalize) {
  ModelConfig c;
  c.architecture = "Qwen3MoeForCausalLM";
  c.hidden_size = kHidden;
  c.num_experts = kExperts;
  c.num_experts_per_tok = top_k;
  c.moe_intermediate_size = kInter;
  c.norm_topk_prob = renormalize;
  return c;
}

MoeLayer random_layer(std::mt19937& rng) {
  MoeLayer m;
  m.router = testing::random_tensor({kExperts, kHidden}, rng, 0.5f);
  for (int64_t e = 0; e < kExperts; ++e) {
    m.w_gate_up.push_back(testing::random_tensor({2 * kInter, kHidden}, rng, 0.3f));
    m.w_down.push_back(testing::random_tensor({kHidden, kInter}, rng, 0.3f));
  }
  return m;
}

// float64 rows of a @ b^T, a [n, k], b [m, k] (f32 tensors).
std::vector<std::vector<double>> matmul_t(const Tensor& a, const Tensor& b) {
  std::vector<std::vector<double>> y(a.dim(0), std::vector<double>(b.dim(0), 0.0));
  for (int64_t i = 0; i < a.dim(0); ++i)
    for (int64_t o = 0; o < b.dim(0); ++o)
      for (int64_t k = 0; k < a.dim(1); ++k)
        y[i][o] += static_cast<double>(a.data<float>()[i * a.dim(1) + k]) * b.data<float>()[o * b.dim(1) + k];
  return y;
}

// The float64 MoE block of x [n, hidden].
std::vector<double> reference(const ModelConfig& c, const MoeLayer& m, const Tensor& x) {
  const int64_t n = x.dim(0);
  const auto logits = matmul_t(x, m.router);
  std::vector<double> out(n * kHidden, 0.0);
  for (int64_t e = 0; e < kExperts; ++e) {
    const auto gate_up = matmul_t(x, m.w_gate_up[e]);
    const Tensor& down = m.w_down[e];
    for (int64_t t = 0; t < n; ++t)
      for (const auto& [chosen, w] : testing::moe_choices(logits[t], c.num_experts_per_tok, c.norm_topk_prob)) {
        if (chosen != e) continue;
        for (int64_t o = 0; o < kHidden; ++o) {
          double acc = 0;
          for (int64_t i = 0; i < kInter; ++i) {
            const double g = gate_up[t][i], u = gate_up[t][kInter + i];
            acc += g / (1 + std::exp(-g)) * u * down.data<float>()[o * kInter + i];
          }
          out[t * kHidden + o] += w * acc;
        }
      }
  }
  return out;
}

Tensor run(const ModelConfig& c, const MoeLayer& m, ExpertRange experts, const Tensor& x) {
  SparseMoe moe(c, experts);
  moe.reserve(x.dim(0), m.w_down.front().dim(1), DType::f32, Device::cpu());
  Tensor out = testing::poisoned_tensor({x.dim(0), kHidden});
  moe.forward(kCpu, m, x, out);
  return out;
}

// Columns [begin, end) of t [rows, cols] (a copy).
Tensor column_slice(const Tensor& t, int64_t begin, int64_t end) {
  Tensor out = Tensor::empty({t.dim(0), end - begin}, DType::f32);
  for (int64_t r = 0; r < t.dim(0); ++r)
    for (int64_t i = begin; i < end; ++i) out.data<float>()[r * (end - begin) + i - begin] = t.data<float>()[r * t.dim(1) + i];
  return out;
}

struct Case {
  int64_t tokens, top_k;
  bool renormalize;
};

// A case's config, a random layer and a random input (seeded by the case).
struct Block {
  ModelConfig c;
  MoeLayer m;
  Tensor x;
};
Block make_block(const Case& k) {
  std::mt19937 rng(static_cast<unsigned>(k.tokens * 10 + k.top_k));
  MoeLayer m = random_layer(rng);
  Tensor x = testing::random_tensor({k.tokens, kHidden}, rng);
  return {moe_config(k.top_k, k.renormalize), std::move(m), std::move(x)};
}

class SparseMoeBlock : public ::testing::TestWithParam<Case> {};

TEST_P(SparseMoeBlock, MatchesFloat64) {
  const Case k = GetParam();
  const auto [c, m, x] = make_block(k);
  const Tensor got = run(c, m, {0, kExperts}, x);
  const std::vector<double> want = reference(c, m, x);
  EXPECT_LT(testing::rel_l2(got.data<float>(), want.data(), got.numel()), 2e-5);
}

// Expert parallelism over 2 ranks: experts [0, 3) and [3, 6), each rank's output the sum over its own experts.
TEST_P(SparseMoeBlock, ExpertShardsSumToTheWholeBlock) {
  const Case k = GetParam();
  const auto [c, m, x] = make_block(k);
  Tensor sum = Tensor::zeros({k.tokens, kHidden}, DType::f32);
  for (int rank = 0; rank < 2; ++rank) {
    const ExpertRange range = owned_experts(c, {rank, 2}, true);
    EXPECT_EQ(range.begin, rank * 3);
    EXPECT_EQ(range.end, rank * 3 + 3);
    MoeLayer held;
    held.router = m.router;
    held.w_gate_up.assign(m.w_gate_up.begin() + range.begin, m.w_gate_up.begin() + range.end);
    held.w_down.assign(m.w_down.begin() + range.begin, m.w_down.begin() + range.end);
    ops::add_(kCpu, sum, run(c, held, range, x));
  }
  const Tensor whole = run(c, m, {0, kExperts}, x);
  EXPECT_LT(testing::rel_l2(sum.data<float>(), whole.data<float>(), whole.numel()), 1e-5);
}

// Tensor parallelism over 2 ranks: each expert's gate and up rows and down columns halved.
TEST_P(SparseMoeBlock, TensorParallelExpertSlicesSumToTheWholeBlock) {
  const Case k = GetParam();
  const auto [c, m, x] = make_block(k);
  Tensor sum = Tensor::zeros({k.tokens, kHidden}, DType::f32);
  const int64_t half = kInter / 2;
  for (int rank = 0; rank < 2; ++rank) {
    MoeLayer held;
    held.router = m.router;
    for (int64_t e = 0; e < kExperts; ++e) {
      Tensor gate_up = Tensor::empty({2 * half, kHidden}, DType::f32);
      gate_up.rows(0, half).copy_from(m.w_gate_up[e].rows(rank * half, rank * half + half));
      gate_up.rows(half, 2 * half).copy_from(m.w_gate_up[e].rows(kInter + rank * half, kInter + rank * half + half));
      held.w_gate_up.push_back(gate_up);
      held.w_down.push_back(column_slice(m.w_down[e], rank * half, rank * half + half));
    }
    ops::add_(kCpu, sum, run(c, held, {0, kExperts}, x));
  }
  const Tensor whole = run(c, m, {0, kExperts}, x);
  EXPECT_LT(testing::rel_l2(sum.data<float>(), whole.data<float>(), whole.numel()), 1e-5);
}

// One token leaves most experts idle; 37 tokens of top 3 give every expert several.
INSTANTIATE_TEST_SUITE_P(Batches, SparseMoeBlock,
                         ::testing::Values(Case{1, 2, true}, Case{13, 2, true}, Case{13, 2, false}, Case{37, 3, false},
                                           Case{37, 3, true}));

TEST(SparseMoe, ExpertParallelismRefusesAnUnevenSplit) {
  const ModelConfig c = moe_config(2, true);
  try {
    owned_experts(c, {0, 4}, true);
    FAIL() << "6 experts over 4 ranks was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot split 6 experts evenly over the 4 ranks"), std::string::npos)
        << e.what();
  }
}

}  // namespace
// The checkpoint's weights, recording the name of each one read.
class RecordingSource : public CheckpointWeights {
 public:
  using CheckpointWeights::CheckpointWeights;
  void read(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout, int64_t first,
            int64_t count, DType dtype, void* dst) const override {
    names.insert(name);
    CheckpointWeights::read(name, shape, layout, first, count, dtype, dst);
  }
  mutable std::set<std::string> names;
};

// Layer 1 of a random Mixtral (8 experts, expert intermediate 96) as TP rank 1 of 2.
TEST(SparseMoe, ExpertParallelRanksReadTheirOwnExpertsWholeAndNoOther) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("lattice-moe-load-" + std::to_string(getpid()))).string();
  RandomLlamaSpec spec = RandomLlamaSpec::preset("tiny");
  spec.architecture = "MixtralForCausalLM";
  spec.num_layers = 2;
  write_random_llama(dir, spec);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const ModelConfig c = ModelConfig::from_file(dir + "/config.json");
  const std::string prefix = "model.layers.1.block_sparse_moe.";
  auto expert = [&](int64_t e, const char* w) { return checkpoint.tensor(prefix + "experts." + std::to_string(e) + "." + w + ".weight"); };
  for (const bool expert_parallel : {true, false}) {
    SCOPED_TRACE(expert_parallel ? "expert parallel" : "tensor parallel");
    RecordingSource source(checkpoint);
    WeightLoader loader(source, llama_weight_table(c, expert_parallel), c.num_layers, c.num_kv_heads, {1, 2}, {}, {});
    const ExpertRange range = owned_experts(c, {1, 2}, expert_parallel);
    const MoeLayer m = load_moe_layer(loader, c, 1, range, DType::f32, Device::cpu());
    std::set<std::string> want = {prefix + "gate.weight"};
    for (int64_t e = range.begin; e < range.end; ++e)
      for (const char* w : {"w1", "w2", "w3"}) want.insert(prefix + "experts." + std::to_string(e) + "." + w + ".weight");
    EXPECT_EQ(source.names, want);
    ASSERT_EQ(static_cast<int64_t>(m.w_gate_up.size()), expert_parallel ? 4 : 8);
    // The first held expert: 4 (whole) under expert parallelism, else 0's second halves (rows 48..95 of w1 and
    // w3, columns 48..95 of w2).
    const int64_t e = range.begin, inter = 96, h = 128, half = expert_parallel ? inter : inter / 2;
    const int64_t from = expert_parallel ? 0 : inter / 2;
    const Tensor w1 = expert(e, "w1"), w3 = expert(e, "w3"), w2 = expert(e, "w2");
    ASSERT_EQ(m.w_gate_up[0].shape(), (std::vector<int64_t>{2 * half, h}));
    ASSERT_EQ(m.w_down[0].shape(), (std::vector<int64_t>{h, half}));
    EXPECT_TRUE(testing::all_close(m.w_gate_up[0].data<float>(), w1.data<float>() + from * h, half * h, 0, 0));
    EXPECT_TRUE(testing::all_close(m.w_gate_up[0].data<float>() + half * h, w3.data<float>() + from * h, half * h, 0, 0));
    for (int64_t r = 0; r < h; ++r)
      EXPECT_TRUE(testing::all_close(m.w_down[0].data<float>() + r * half, w2.data<float>() + r * inter + from, half, 0, 0));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace lattice
