// The tiny-llama fixture's logits on the GPU: f32 against the CPU backend (the oracle), bf16 against the float64
// reference (tests/data/tiny-llama/expected.json), and a sequence's logits alone against the same sequence in a
// mixed prefill + decode batch (the contract of tests/models/batching_test.cc, on the GPU), and a Mistral sliding
// window against the CPU backend.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "engine/kv_cache/block_manager.h"
#include "models/random_checkpoint.h"
#include "tests/gpu/gpu_engine.h"

namespace lattice::testing {
namespace {

using nlohmann::json;

// f32 on the GPU against f32 on the CPU: both accumulate in f32 (cuBLASLt with TF32 off, the attention kernels
// in f32), in another order; f32 rounding over a 4-layer model gives ~1e-6 relative (the CPU backend is 6.7e-7
// from float64, tiny_llama_test). 1e-4 is the bound: far above rounding, far below a real bug (a wrong
// RoPE or a skipped layer gives ~1).
constexpr double kF32RelL2 = 1e-4;
// bf16 on the GPU against float64: weights rounded to 8 significant bits alone give 9.5e-3 relative L2 (measured
// on the CPU, tiny_llama_test's kBf16). The GPU also rounds activations and the KV cache to bf16: about 24
// roundings along the 4 layers (norm output, q/k/v, attention output, residual, gate/up, SiLU product), each
// up to 2^-9 = 2e-3 relative, rms 2^-9/sqrt(3) = 1.1e-3, independent: sqrt(24) * 1.1e-3 = 5.5e-3, so about
// 1.1e-2 in all. 3e-2 (kBf16's bound) leaves 2.7x; top-5 logits within 0.15 rms(logits) as kBf16.
constexpr double kBf16RelL2 = 3e-2, kBf16Top5 = 0.15;

const json& cases() { return tiny_llama_expected()["cases"]; }
constexpr int64_t kVocab = 512;

std::vector<int32_t> ints(const json& j) { return j.get<std::vector<int32_t>>(); }

// Feeds `tokens` to sequence 0 at `start` (growing its blocks) and returns the logits after every one of them.
std::vector<float> feed(LlamaModel& model, KvCache& cache, BlockManager& blocks, const std::vector<int32_t>& tokens,
                        int64_t start) {
  EXPECT_TRUE(blocks.grow(0, start + static_cast<int64_t>(tokens.size())));
  StepBatch batch;
  batch.seqs.push_back({0, tokens, start, blocks.table(0), true});
  return GpuEngineTest::step_logits(model, cache, batch);
}

// Row r of a [rows, vocab] host copy.
const float* row(const std::vector<float>& logits, size_t r) { return logits.data() + r * kVocab; }

// The whole fixture case on `model`: its prompt in one step, then its greedy tokens one decode step each
// (teacher forcing). Returns one logit row per prompt position, then one per decode step.
std::vector<std::vector<float>> case_logits(LlamaModel& model, const json& c) {
  KvCache cache = GpuEngineTest::cache_for(model, 64);
  BlockManager blocks(64, static_cast<int32_t>(cache.shape().block_size));
  const auto prompt = ints(c["prompt"]), greedy = ints(c["greedy"]);
  std::vector<std::vector<float>> rows;
  const std::vector<float> prefill = feed(model, cache, blocks, prompt, 0);
  for (size_t p = 0; p < prompt.size(); ++p) rows.emplace_back(row(prefill, p), row(prefill, p) + kVocab);
  int64_t pos = static_cast<int64_t>(prompt.size());
  for (size_t j = 0; j < c["steps"].size(); ++j, ++pos) rows.push_back(feed(model, cache, blocks, {greedy[j]}, pos));
  return rows;
}

class GpuLogits : public GpuEngineTest {};

TEST_F(GpuLogits, F32MatchesTheCpuBackendAtEveryPromptPositionAndDecodeStep) {
  for (size_t c = 0; c < cases().size(); ++c) {
    const auto want = case_logits(*cpu_, cases()[c]);
    const auto got = case_logits(gpu_model(DType::f32), cases()[c]);
    ASSERT_EQ(got.size(), want.size());
    const size_t prompt_len = cases()[c]["prompt"].size();
    for (size_t r = 0; r < got.size(); ++r)
      EXPECT_LT(rel_l2(got[r].data(), want[r].data(), kVocab), kF32RelL2)
          << "case " << c << (r < prompt_len ? " prompt position " : " decode step ")
          << (r < prompt_len ? r : r - prompt_len);
  }
}

TEST_F(GpuLogits, Bf16IsWithinBf16ToleranceOfTheFloat64Reference) {
  for (size_t c = 0; c < cases().size(); ++c) {
    const json& ref = cases()[c];
    const auto got = case_logits(gpu_model(DType::bf16), ref);
    const size_t prompt_len = ref["prompt"].size();
    for (size_t r = 0; r < got.size(); ++r) {
      const json& want = r < prompt_len ? ref["prompt_positions"][r] : ref["steps"][r - prompt_len];
      const std::string where = "case " + std::to_string(c) + (r < prompt_len ? " prompt position " : " decode step ") +
                                std::to_string(r < prompt_len ? r : r - prompt_len);
      const float* g = got[r].data();
      if (want.contains("logits")) {
        const auto full = want["logits"].get<std::vector<double>>();
        EXPECT_LT(rel_l2(g, full.data(), kVocab), kBf16RelL2) << where;
      }
      const double rms = std::sqrt(std::inner_product(g, g + kVocab, g, 0.0) / kVocab);
      for (const json& pair : want["top5"])
        EXPECT_NEAR(g[pair[0].get<int>()], pair[1].get<double>(), kBf16Top5 * rms) << where << " token " << pair[0];
    }
  }
}

// Cases 5-8 keep a top-1 margin of at least 0.02 rms(logits) at every greedy step (fixture README), so free-running
// greedy decoding in bf16 must reproduce the reference's tokens exactly.
TEST_F(GpuLogits, Bf16FreeRunningGreedyMatchesTheReferenceOnClearMarginCases) {
  LlamaModel& model = gpu_model(DType::bf16);
  for (size_t c = 5; c <= 8; ++c) {
    KvCache cache = cache_for(model, 64);
    BlockManager blocks(64, static_cast<int32_t>(cache.shape().block_size));
    const auto prompt = ints(cases()[c]["prompt"]), want = ints(cases()[c]["greedy"]);
    std::vector<float> logits = feed(model, cache, blocks, prompt, 0);
    const float* last = row(logits, prompt.size() - 1);
    std::vector<int32_t> got;
    for (int64_t pos = static_cast<int64_t>(prompt.size()); got.size() < want.size(); ++pos) {
      got.push_back(static_cast<int32_t>(std::max_element(last, last + kVocab) - last));
      logits = feed(model, cache, blocks, {got.back()}, pos);
      last = logits.data();
    }
    EXPECT_EQ(got, want) << "case " << c;
  }
}

// Mistral's sliding window on the GPU against the CPU backend, whose masked attention equals a float64 reference
// (random_families_test): a random checkpoint with tiny-llama's head layout (the scratch is sized for it) and a
// window of 7 over a 60-token prompt and 12 decode steps, so the prefill kernel masks rows from below and the
// decode kernel skips positions before the window. f32 bound as above.
TEST_F(GpuLogits, F32MistralSlidingWindowMatchesTheCpuBackend) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("lattice-gpu-mistral-" + std::to_string(getpid()))).string();
  RandomLlamaSpec spec = RandomLlamaSpec::preset("tiny");
  spec.architecture = "MistralForCausalLM";
  spec.sliding_window = 7;
  spec.max_position_embeddings = kMaxContext;
  spec.seed = 5;
  write_random_llama(dir, spec);
  const auto cpu = LlamaModel::load(dir);
  const auto gpu = LlamaModel::load(dir, {}, nullptr, LoadOptions{DType::f32, ctx_->exec(), false});
  std::filesystem::remove_all(dir);
  std::mt19937 rng(11);
  std::vector<int32_t> tokens(72);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % kVocab);
  const auto run = [&](LlamaModel& model) {
    KvCache cache = cache_for(model, 16);
    BlockManager blocks(16, static_cast<int32_t>(cache.shape().block_size));
    std::vector<float> rows = feed(model, cache, blocks, {tokens.begin(), tokens.begin() + 60}, 0);
    for (int64_t pos = 60; pos < 72; ++pos) {
      const std::vector<float> next = feed(model, cache, blocks, {tokens[pos]}, pos);
      rows.insert(rows.end(), next.begin(), next.end());
    }
    return rows;
  };
  const auto want = run(*cpu), got = run(*gpu);
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r < got.size() / kVocab; ++r)
    EXPECT_LT(rel_l2(row(got, r), row(want, r), kVocab), kF32RelL2) << "position " << r;
}

// Batch composition changes the GEMM row count (cuBLASLt may pick another algorithm, so another f32 summation
// order) and the attention kernel (a lone decode token takes the split-K decode kernel, in a mixed batch the
// prefill kernel). f32: rounding only, ~1e-6; 1e-5 as batching_test. bf16: the f32 sums differ by ~1e-7
// relative, which flips an activation's rounding to the neighbouring bf16 value (2^-8 = 3.9e-3 relative) only
// when it lies that close to a rounding midpoint: rare elements, so far under 1e-2 in the logits.
struct BatchCase {
  DType dtype;
  double rel_l2;
};
void PrintTo(const BatchCase& c, std::ostream* os) { *os << dtype_name(c.dtype) << ", relative L2 < " << c.rel_l2; }

class GpuBatchInvariance : public GpuEngineTest, public ::testing::WithParamInterface<BatchCase> {
 protected:
  static std::vector<int32_t> random_tokens(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = static_cast<int32_t>(rng() % kVocab);
    return t;
  }
  static std::vector<int32_t> block_range(int32_t first, int32_t n) {
    std::vector<int32_t> b(n);
    std::iota(b.begin(), b.end(), first);
    return b;
  }
  // Logits after every token of `seq`, fed alone in one step.
  static std::vector<float> alone(LlamaModel& model, const std::vector<int32_t>& seq) {
    KvCache cache = cache_for(model, 64);
    StepBatch b;
    b.seqs.push_back({0, seq, 0, block_range(0, 4), true});
    return step_logits(model, cache, b);
  }
  void expect_row(const std::vector<float>& got, size_t got_row, const std::vector<float>& want, size_t want_row,
                  const std::string& where) const {
    EXPECT_LT(rel_l2(row(got, got_row), row(want, want_row), kVocab), GetParam().rel_l2) << where;
  }
};

TEST_P(GpuBatchInvariance, MixedPrefillAndDecodeBatchEqualsEachSequenceAlone) {
  LlamaModel& model = gpu_model(GetParam().dtype);
  const auto a = random_tokens(40, 1), b = random_tokens(23, 2), c = random_tokens(9, 3);
  const auto ref_a = alone(model, a), ref_b = alone(model, b), ref_c = alone(model, c);
  auto c_then = c;
  c_then.push_back(b[0]);
  const auto ref_c2 = alone(model, c_then);

  KvCache cache = cache_for(model, 64);
  const auto ta = block_range(0, 4), tb = block_range(10, 4), tc = block_range(20, 4);
  StepBatch s1;  // A: 37-token prefill; B: its first 5 tokens
  s1.seqs.push_back({0, {a.begin(), a.begin() + 37}, 0, ta, true});
  s1.seqs.push_back({1, {b.begin(), b.begin() + 5}, 0, tb, true});
  const auto o1 = step_logits(model, cache, s1);
  for (size_t r = 0; r < 37; ++r) expect_row(o1, r, ref_a, r, "A prefill position " + std::to_string(r));
  for (size_t r = 0; r < 5; ++r) expect_row(o1, 37 + r, ref_b, r, "B chunk 1 position " + std::to_string(r));

  StepBatch s2;  // A decodes one token, B finishes its prompt, C prefills whole, in one step
  s2.seqs.push_back({0, {a[37]}, 37, ta, false});
  s2.seqs.push_back({1, {b.begin() + 5, b.end()}, 5, tb, true});
  s2.seqs.push_back({2, c, 0, tc, false});
  const auto o2 = step_logits(model, cache, s2);
  ASSERT_EQ(o2.size(), static_cast<size_t>((1 + 18 + 1) * kVocab));
  expect_row(o2, 0, ref_a, 37, "A decode");
  for (size_t r = 0; r < 18; ++r) expect_row(o2, 1 + r, ref_b, 5 + r, "B chunk 2 position " + std::to_string(5 + r));
  expect_row(o2, 19, ref_c, c.size() - 1, "C prefill");

  StepBatch s3;  // pure decode of two sequences: the split-K decode kernel
  s3.seqs.push_back({0, {a[38]}, 38, ta, false});
  s3.seqs.push_back({2, {b[0]}, 9, tc, false});
  const auto o3 = step_logits(model, cache, s3);
  expect_row(o3, 0, ref_a, 38, "A decode 2");
  expect_row(o3, 1, ref_c2, c.size(), "C decode");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuBatchInvariance,
                         ::testing::Values(BatchCase{DType::f32, 1e-5}, BatchCase{DType::bf16, 1e-2}),
                         [](const auto& info) { return std::string(dtype_name(info.param.dtype)); });

}  // namespace
}  // namespace lattice::testing
