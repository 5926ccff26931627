// Random checkpoints split over CPU ranks under mpiexec (LATTICE_TEST_TP x LATTICE_TEST_PP, LATTICE_TEST_ARCH
// llama, qwen3, mixtral or qwen3_moe, LATTICE_TEST_EP=1 for expert parallelism): the split model's prompt logits
// (within 1e-5 relative at every position) and greedy tokens equal one rank's. The vocabulary is 701, which no tp > 1 divides: each rank holds ceil(701 / tp) rows of the
// embedding and lm_head, the last padded with zeros, and the logits stay 701 wide. The prompts use ids of every
// shard, the last shard's last id (700) included. qwen3 adds the q/k norms and a head_dim (32) other than
// hidden / heads (16). mixtral (8 experts, top 2) and qwen3_moe (8 experts, top 2, q/k norms) split their experts
// by column / row over the TP group, or whole with expert parallelism (8 experts over 2 or 4 ranks).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "engine/scheduler/executor.h"
#include "models/random_checkpoint.h"
#include "tests/parallel/grid_rank.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

constexpr int64_t kVocab = 701, kLayers = 2;
parallel::MpiRuntime* g_mpi = nullptr;
std::string g_model_dir;  // written by rank 0 before the tests, removed after them

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 1;
}

testing::GridRank grid_rank() {
  return testing::GridRank(*g_mpi, g_model_dir, kLayers, env_int("LATTICE_TEST_TP"), env_int("LATTICE_TEST_PP"),
                           std::getenv("LATTICE_TEST_EP") && std::string(std::getenv("LATTICE_TEST_EP")) == "1");
}

std::vector<std::vector<int32_t>> prompts() {
  return {{700, 1, 616, 615, 87, 88, 699, 350}, {5, 700, 700, 2, 440, 175, 176, 525, 526, 3, 698}, {700}};
}

TEST(RandomModelGrid, PromptLogitsEqualOneRank) {
  testing::GridRank g = grid_rank();
  ASSERT_EQ(g.model->lm_shape().vocab_size, kVocab);
  std::unique_ptr<LlamaModel> whole;
  if (g.ctx.topo.rank == g.ctx.topo.sampler_rank()) whole = LlamaModel::load(g_model_dir);
  for (const auto& prompt : prompts()) {
    std::optional<StepOutput> out = g.run_prompt(prompt);
    ASSERT_EQ(out.has_value(), g.ctx.topo.rank == g.ctx.topo.sampler_rank());
    if (!out) continue;
    const Tensor one_rank = testing::one_rank_logits(*whole, prompt);
    ASSERT_EQ(out->logits.shape(), (std::vector<int64_t>{static_cast<int64_t>(prompt.size()), kVocab}));
    ASSERT_EQ(one_rank.shape(), out->logits.shape());
    for (size_t p = 0; p < prompt.size(); ++p) {
      const float* got = out->logits.data<float>() + p * kVocab;
      const float* want = one_rank.data<float>() + p * kVocab;
      // f32 partial sums in another order: ~1e-7 relative. (A MoE router sees hidden states that differ from
      // one rank's by as much, which could flip a top-k choice only at a near-tie that close.)
      EXPECT_LT(testing::rel_l2(got, want, kVocab), 1e-5) << "position " << p;
      EXPECT_EQ(std::max_element(got, got + kVocab) - got, std::max_element(want, want + kVocab) - want)
          << "position " << p;
    }
  }
}

TEST(RandomModelGrid, GreedyThroughTheCoordinatorEqualsOneRank) {
  testing::GridRank g = grid_rank();
  const auto grid = testing::grid_greedy_tokens(g, prompts(), 16);
  if (!grid) return;  // a worker
  const auto& split = *grid;
  auto whole = LlamaModel::load(g_model_dir);
  KvCache cache(whole->lm_shape().kv, 64);
  LocalExecutor local(*whole, cache);
  const auto one_rank = testing::greedy_tokens(whole->lm_shape(), local, prompts(), 16);
  ASSERT_EQ(split.size(), prompts().size());
  for (size_t c = 0; c < split.size(); ++c) EXPECT_EQ(split[c], one_rank[c]) << "prompt " << c;
}

}  // namespace
}  // namespace lattice

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lattice::parallel::MpiRuntime mpi(&argc, &argv);
  lattice::g_mpi = &mpi;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int64_t pid = getpid();
  MPI_Bcast(&pid, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("lattice-grid-vocab701-" + std::to_string(pid));
  lattice::g_model_dir = dir.string();
  if (rank == 0) {
    lattice::RandomLlamaSpec spec = lattice::RandomLlamaSpec::preset("tiny");
    spec.vocab_size = lattice::kVocab;
    spec.num_layers = lattice::kLayers;
    spec.seed = 701;
    const char* arch = std::getenv("LATTICE_TEST_ARCH");
    const std::string name = arch ? arch : "llama";
    if (name == "qwen3" || name == "qwen3_moe") spec.head_dim = 32;
    if (name == "qwen3") spec.architecture = "Qwen3ForCausalLM";
    if (name == "mixtral") spec.architecture = "MixtralForCausalLM";
    if (name == "qwen3_moe") spec.architecture = "Qwen3MoeForCausalLM";
    lattice::write_random_llama(dir.string(), spec);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const int result = RUN_ALL_TESTS();
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(dir);
  return result;
}
