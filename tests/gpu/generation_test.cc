// Whole generations on the GPU through the Scheduler and a LocalExecutor that samples on the GPU: greedy tokens
// and seeded sampling against the CPU backend, and a preempting 32-request run against each request alone (the
// contract of tests/engine/scheduler_test.cc, on the GPU). All in f32, where the two backends' logits agree to
// ~1e-6 relative (logits_test.cc), so a token can differ only if a draw lands within ~1e-6 of a boundary of the
// sampling distribution (or a greedy margin is that small): about 1e-6 per token, 4e-4 over a run's ~400 tokens.
// Async scheduling on the GPU (steps planned ahead, their tokens fed on the device) against it off and the CPU.
#include <array>
#include <random>

#include "tests/gpu/gpu_engine.h"

namespace lattice::testing {
namespace {

using nlohmann::json;

// Log-probabilities are log-softmax of logits that differ by ~1e-6 relative (|logit| < 30 here): ~1e-5 absolute.
constexpr double kLogprobAbs = 1e-4;

void expect_same(const std::vector<RequestOutput>& got, const std::vector<RequestOutput>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << what;
    ASSERT_EQ(got[i].tokens.size(), want[i].tokens.size()) << what << ": request " << want[i].id;
    for (size_t j = 0; j < got[i].tokens.size(); ++j) {
      EXPECT_EQ(got[i].tokens[j].token, want[i].tokens[j].token) << what << ": request " << want[i].id << " token " << j;
      EXPECT_NEAR(got[i].tokens[j].logprob, want[i].tokens[j].logprob, kLogprobAbs)
          << what << ": request " << want[i].id << " token " << j;
    }
    EXPECT_EQ(got[i].finish, want[i].finish) << what << ": request " << want[i].id;
  }
}

// 32 requests of 1-90 random prompt tokens and 4-20 new ones: greedy and seeded sampling with every setting the
// GPU sampler implements (temperature, top-k <= 64, top-p, min-p, repetition/presence/frequency penalties).
std::vector<Request> mixed_requests() {
  std::mt19937 rng(3);
  auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  std::vector<Request> rs;
  for (int i = 0; i < 32; ++i) {
    Request r;
    r.id = i;
    for (int j = uniform(1, 90); j > 0; --j) r.prompt.push_back(uniform(0, 511));
    SamplingParams& p = r.params;
    p.max_tokens = uniform(4, 20);
    p.temperature = std::array{0.0f, 0.7f, 1.0f}[i % 3];
    p.seed = 1000 + i;
    p.logprobs = 2;
    p.ignore_eos = true;
    if (i % 4 == 1) p.top_k = 20;
    if (i % 4 == 2) p.top_p = 0.9f;
    if (i % 5 == 3) p.repetition_penalty = 1.2f;
    if (i % 6 == 4) p.min_p = 0.05f;
    if (i % 7 == 5) p.presence_penalty = 0.5f, p.frequency_penalty = 0.3f;
    rs.push_back(r);
  }
  return rs;
}

class GpuGeneration : public GpuEngineTest {};

// Every greedy step of the fixture cases has a top-1 margin of at least 0.0147 logits (expected.json), 100x the
// f32 logit error between the backends (~1e-6 of |logits|_2 = 144): GPU greedy sampling must give the CPU
// backend's tokens, which are the float64 reference's.
TEST_F(GpuGeneration, F32GreedyTokensMatchTheCpuBackendAndTheReference) {
  const json& cases = tiny_llama_expected()["cases"];
  const std::vector<Request> requests = fixture_greedy_requests(2);
  const auto gpu = generate(gpu_model(DType::f32), requests, 256);
  expect_same(gpu, generate(*cpu_, requests, 256), "GPU vs CPU");
  for (size_t c = 0; c < gpu.size(); ++c) {
    std::vector<int32_t> tokens;
    for (const SampledToken& t : gpu[c].tokens) tokens.push_back(t.token);
    EXPECT_EQ(tokens, cases[c]["greedy"].get<std::vector<int32_t>>()) << "case " << c;
  }
}

// The CPU sampler and the GPU kernels draw from one counter-based hash of (seed, offset): one seed, one output.
TEST_F(GpuGeneration, SeededSamplingOnTheGpuGivesTheCpuSamplersTokens) {
  const auto requests = mixed_requests();
  expect_same(generate(gpu_model(DType::f32), requests, 256), generate(*cpu_, requests, 256), "GPU vs CPU sampler");
}

TEST_F(GpuGeneration, PreemptingRunOf32RequestsEqualsEachRequestAlone) {
  const auto requests = mixed_requests();
  LlamaModel& model = gpu_model(DType::f32);
  std::vector<RequestOutput> alone;
  for (const Request& r : requests) alone.push_back(generate(model, {r}, 64)[0]);
  SchedulerStats stats;
  const auto together = generate(model, requests, 12, &stats);  // 12 blocks of 16 tokens for up to 110 each
  EXPECT_GT(stats.preemptions, 0) << "the KV cache was meant to force preemption";
  expect_same(together, alone, "32 together (preempting) vs alone");
}

// Async scheduling: requests that stop on a token of their own at different steps (rows planned ahead for them
// discarded). Without penalties every step planned ahead takes its tokens on the device (the step enqueued before
// the previous one's tokens reach the host); with them (mixed_requests), a step whose fed rows have penalties
// waits for the tokens on the host. Both give the tokens of one step in flight and of the CPU backend.
TEST_F(GpuGeneration, AsyncSchedulingFeedsTokensOnTheDeviceAndChangesNoToken) {
  LlamaModel& model = gpu_model(DType::f32);
  for (const bool penalties : {false, true}) {
    SCOPED_TRACE(penalties ? "with penalties" : "without penalties");
    std::vector<Request> requests = mixed_requests();
    for (Request& r : requests) {
      r.params.max_tokens = 12;
      if (!penalties) r.params.repetition_penalty = 1.0f, r.params.presence_penalty = r.params.frequency_penalty = 0;
    }
    const auto plain = generate(model, requests, 256);
    for (size_t i = 0; i < requests.size(); i += 3)  // a third stop on their own third to sixth token
      requests[i].params.stop_token_ids = {plain[i].tokens[2 + i % 4].token};
    const auto reference = generate(model, requests, 256);
    SchedulerStats stats;
    int64_t device_fed = 0;
    expect_same(generate(model, requests, 256, &stats, true, &device_fed), reference, "async vs one step in flight");
    expect_same(generate(*cpu_, requests, 256, nullptr, true), reference, "CPU async vs GPU");
    EXPECT_GT(stats.ahead_steps, 0);
    EXPECT_GT(stats.discarded_rows, 0);
    if (!penalties) {
      EXPECT_EQ(device_fed, stats.ahead_steps);
    }
  }
}

}  // namespace
}  // namespace lattice::testing
