// Random Mixtral and Qwen3-MoE checkpoints (8 experts, top 2) on the GPU in f32 against the CPU backend (the
// oracle, itself tested against float64 in tests/models/random_families_test.cc): the logits at every prompt
// position (a prefill step, where every expert gets tokens) and over greedy decode steps (one token, two experts
// active), through moe_route / moe_group / per-expert GEMMs / moe_combine on the device.
// Tolerance: as tiny-llama's f32 GPU check (logits_test.cc), 1e-4 relative L2: f32 summation-order differences
// are ~1e-6; a wrong expert or weight gives ~1e-1. (A router near-tie within ~1e-6 could choose differently on
// the two backends; the fixed seeds have none.)
#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "engine/kv_cache/block_manager.h"
#include "models/random_checkpoint.h"
#include "tests/gpu/gpu_engine.h"

namespace lattice::testing {
namespace {

constexpr double kF32RelL2 = 1e-4;

class GpuMoeLogits : public GpuEngineTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(GpuMoeLogits, F32MatchesTheCpuBackendInPrefillAndDecode) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("lattice-gpu-" + GetParam() + "-" + std::to_string(getpid()))).string();
  RandomLlamaSpec spec = RandomLlamaSpec::preset("tiny");  // tiny-llama's attention shape (the scratch's)
  spec.architecture = GetParam();
  spec.num_layers = 2;
  spec.seed = 9;
  write_random_llama(dir, spec);
  const auto cpu = LlamaModel::load(dir);
  const auto gpu = LlamaModel::load(dir, {}, nullptr, LoadOptions{DType::f32, ctx_->exec(), false});
  const int64_t vocab = cpu->lm_shape().vocab_size;
  const std::vector<int32_t> prompt = {1, 17, 300, 42, 42, 7, 511, 128, 9, 64, 3};
  std::vector<std::vector<float>> rows[2];
  for (int side = 0; side < 2; ++side) {
    LlamaModel& model = side == 0 ? *cpu : *gpu;
    KvCache cache = cache_for(model, 16);
    BlockManager blocks(16, static_cast<int32_t>(cache.shape().block_size));
    std::vector<int32_t> tokens = prompt;
    for (int step = 0; step < 6; ++step) {
      const int64_t start = step == 0 ? 0 : static_cast<int64_t>(tokens.size()) - 1;
      const std::vector<int32_t> fed(tokens.begin() + start, tokens.end());
      ASSERT_TRUE(blocks.grow(0, static_cast<int64_t>(tokens.size())));
      StepBatch batch;
      batch.seqs.push_back({0, fed, start, blocks.table(0), true});
      const std::vector<float> logits = step_logits(model, cache, batch);
      for (size_t r = 0; r < fed.size(); ++r) rows[side].emplace_back(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
      // Both sides continue with the CPU's greedy token (teacher forcing), so they see the same sequence.
      const std::vector<float>& last = rows[0][tokens.size() - 1];
      tokens.push_back(static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
    }
  }
  ASSERT_EQ(rows[1].size(), rows[0].size());
  for (size_t r = 0; r < rows[0].size(); ++r)
    EXPECT_LT(rel_l2(rows[1][r].data(), rows[0][r].data(), vocab), kF32RelL2) << "position " << r;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Architectures, GpuMoeLogits, ::testing::Values("MixtralForCausalLM", "Qwen3MoeForCausalLM"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return std::string(info.param == "MixtralForCausalLM" ? "mixtral" : "qwen3_moe");
                         });

}  // namespace
}  // namespace lattice::testing
