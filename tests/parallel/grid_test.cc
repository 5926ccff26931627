// TP x PP equivalence on CPU ranks (run under mpiexec by CTest with LATTICE_TEST_TP / LATTICE_TEST_PP):
// every split of the tiny-llama fixture gives one rank's logits (within 1e-5 relative) and greedy tokens,
// and each rank reads only its own slices of the checkpoint.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <numeric>

#include <nlohmann/json.hpp>

#include "engine/kv_cache/block_manager.h"
#include "models/llama.h"
#include "tests/parallel/grid_rank.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

using nlohmann::json;

parallel::MpiRuntime* g_mpi = nullptr;

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 1;
}

// This rank's share of the tiny-llama model (4 layers) on the grid the test runs under.
struct Grid : testing::GridRank {
  Grid()
      : GridRank(*g_mpi, testing::data_dir() + "/tiny-llama/f32", 4, env_int("LATTICE_TEST_TP"),
                 env_int("LATTICE_TEST_PP")) {}
};

TEST(Grid, PromptLogitsEqualOneRankAndTheReference) {
  Grid g;
  std::unique_ptr<LlamaModel> whole;
  if (g.ctx.topo.rank == g.ctx.topo.sampler_rank()) whole = LlamaModel::load(testing::data_dir() + "/tiny-llama/f32");
  const json& cases = testing::tiny_llama_expected()["cases"];
  for (size_t c = 0; c < cases.size(); ++c) {
    const auto prompt = cases[c]["prompt"].get<std::vector<int32_t>>();
    std::optional<StepOutput> out = g.run_prompt(prompt);
    // Logits reach only the sampler rank (TP rank 0 of the last stage).
    ASSERT_EQ(out.has_value(), g.ctx.topo.rank == g.ctx.topo.sampler_rank());
    if (!out) continue;
    const Tensor one_rank = testing::one_rank_logits(*whole, prompt);
    ASSERT_EQ(out->logits.shape(), one_rank.shape());
    for (size_t p = 0; p < prompt.size(); ++p) {
      const float* got = out->logits.data<float>() + p * 512;
      EXPECT_LT(testing::rel_l2(got, one_rank.data<float>() + p * 512, 512), 1e-5) << "case " << c << " position " << p;
      const json& want = cases[c]["prompt_positions"][p];
      if (want.contains("logits")) {
        const auto full = want["logits"].get<std::vector<double>>();
        EXPECT_LT(testing::rel_l2(got, full.data(), 512), 5e-6) << "case " << c << " position " << p;
      }
    }
  }
}

// The prompts of the fixture's cases.
std::vector<std::vector<int32_t>> case_prompts() {
  std::vector<std::vector<int32_t>> prompts;
  for (const json& c : testing::tiny_llama_expected()["cases"]) prompts.push_back(c["prompt"].get<std::vector<int32_t>>());
  return prompts;
}

TEST(Grid, GreedyThroughTheCoordinatorEqualsTheReference) {
  Grid g;
  const auto grid = testing::grid_greedy_tokens(g, case_prompts(), 24);
  if (!grid) return;  // a worker
  const auto& outputs = *grid;
  // Every case equals one rank's greedy tokens; cases 5-8 (clear margins) also equal the reference's.
  auto single = LlamaModel::load(testing::data_dir() + "/tiny-llama/f32");
  KvCache cache(single->lm_shape().kv, 64);
  LocalExecutor local(*single, cache);
  const auto one_rank = testing::greedy_tokens(single->lm_shape(), local, case_prompts(), 24);
  const json& cases = testing::tiny_llama_expected()["cases"];
  ASSERT_EQ(outputs.size(), cases.size());
  for (size_t c = 0; c < cases.size(); ++c) {
    EXPECT_EQ(outputs[c], one_rank[c]) << "case " << c;
    if (c >= 5) {
      EXPECT_EQ(outputs[c], cases[c]["greedy"].get<std::vector<int32_t>>()) << "case " << c;
    }
  }
}

// Async scheduling on the grid: with one stage, rank 0 feeds each step planned ahead before broadcasting it, so
// every TP rank embeds the same tokens; with several stages nothing is planned ahead. Sequences end on an EOS
// token at different steps (rows planned ahead for them discarded); every layout gives one rank's tokens without
// async scheduling.
TEST(Grid, AsyncSchedulingGivesTheTokensOfOneRankWithoutIt) {
  Grid g;
  SchedulerOptions options;
  std::vector<std::vector<int32_t>> reference;
  if (g.ctx.topo.is_coordinator()) {  // the workers wait for the first plan meanwhile
    auto single = LlamaModel::load(testing::data_dir() + "/tiny-llama/f32");
    KvCache cache(single->lm_shape().kv, 64);
    LocalExecutor local(*single, cache);
    options.eos_token_ids = {testing::greedy_tokens(single->lm_shape(), local, case_prompts(), 24)[0][4]};
    reference = testing::greedy_tokens(single->lm_shape(), local, case_prompts(), 24, options);
  }
  options.async_scheduling = true;
  SchedulerStats stats;
  const auto grid = testing::grid_greedy_tokens(g, case_prompts(), 24, options, &stats);
  if (!grid) return;  // a worker
  EXPECT_EQ(*grid, reference);
  EXPECT_LT(reference[0].size(), 24u) << "case 0 ends on EOS";
  if (g.ctx.topo.pp == 1) {
    EXPECT_GT(stats.ahead_steps, 0);
    EXPECT_GT(stats.discarded_rows, 0);
  } else {
    EXPECT_EQ(stats.ahead_steps, 0);
  }
}

TEST(Grid, EachRankReadsOnlyItsSlices) {
  Grid g;
  // tiny-llama in f32: hidden 128, intermediate 352, 8 heads and 4 KV heads of 16, vocab 512, 4 layers.
  // A rank reads 1/tp of every split matrix of its layers (k/v: one 16-row head each once tp > 4 KV heads),
  // every norm gain of its layers whole, and its vocabulary shard of the embedding / lm_head.
  const int64_t tp = g.ctx.topo.tp, f32 = 4;
  const auto bounds = parallel::pipeline_layer_bounds(4, g.ctx.topo.pp, {});
  const int64_t layers = bounds[g.ctx.topo.pp_rank + 1] - bounds[g.ctx.topo.pp_rank];
  const int64_t kv_rows = tp <= 4 ? 64 / tp : 16;
  int64_t want = layers * (2 * 128 * 128 / tp + 2 * kv_rows * 128 + 3 * 352 * 128 / tp + 2 * 128);
  if (g.ctx.topo.is_first_stage()) want += 512 * 128 / tp;
  if (g.ctx.topo.is_last_stage()) want += 128 + 512 * 128 / tp;
  EXPECT_EQ(static_cast<int64_t>(g.model->weight_bytes_read()), want * f32) << g.ctx.topo.describe();
  // Together the ranks read the checkpoint exactly once, plus what they replicate.
  const Checkpoint ckpt = Checkpoint::open(testing::data_dir() + "/tiny-llama/f32");
  int64_t total = 0;
  for (const std::string& name : ckpt.names()) total += static_cast<int64_t>(ckpt.tensor(name).nbytes());
  const int64_t read = static_cast<int64_t>(g.model->weight_bytes_read());
  int64_t sum = 0;
  MPI_Allreduce(&read, &sum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  const int64_t replicated_norms = (tp - 1) * 9 * 128 * f32;
  const int64_t replicated_kv = tp > 4 ? (tp / 4 - 1) * 4 * 2 * 64 * 128 * f32 : 0;
  EXPECT_EQ(sum, total + replicated_norms + replicated_kv);
}

}  // namespace
}  // namespace lattice

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lattice::parallel::MpiRuntime mpi(&argc, &argv);
  lattice::g_mpi = &mpi;
  return RUN_ALL_TESTS();
}
