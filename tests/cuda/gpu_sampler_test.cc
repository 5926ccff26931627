// The engine's GPU sampling (SamplerBank over cuda logits, engine/sampler/gpu_sampler.h) against its CPU sampling
// (SamplerBank over the same logits on the host), step after step on fresh random logits: the same tokens from
// the same seeds for greedy, top-k, top-p, min-p and penalised rows, and the same log-probabilities and top lists;
// rows that cannot be sampled (NaN, +inf, nothing but -inf) get the same per-row error and leave the others be.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "engine/cuda/device_context.h"
#include "engine/sampler/gpu_sampler.h"
#include "engine/sampler/sampler_bank.h"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

SamplingParams make(float temperature, int32_t top_k, float top_p, float min_p, int32_t logprobs = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.logprobs = logprobs;
  return p;
}

SamplingParams penalised(SamplingParams p) {
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.4f;
  p.frequency_penalty = 0.3f;
  return p;
}

// Runs `steps` steps over one sequence per entry of `params` (random prompts, then their sampled tokens), both
// banks on the same logits, and compares every result. With `interleave`, a sequence that is never sampled
// (a long prefill, three logits rows per step) sits between the others, so the sampled rows are not one run.
// `poison` (optional) edits sequence i's logits row at each step. Returns the rows that gave an error.
using Poison = std::function<void(int step, int64_t seq, float* row, int64_t vocab)>;
int expect_same_as_cpu(const std::vector<SamplingParams>& params, int steps, int64_t vocab, bool interleave,
                       const Poison& poison = {}) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", vocab " << vocab);
  std::mt19937 rng(seed);
  DeviceContext device(0);
  SamplerBank cpu_bank, gpu_bank(&device.exec());
  const int64_t n = static_cast<int64_t>(params.size());
  std::vector<std::vector<int32_t>> pending(static_cast<size_t>(n));  // tokens to feed next step
  std::vector<int64_t> fed(static_cast<size_t>(n), 0);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  std::uniform_int_distribution<int32_t> few(0, 15);  // repeated ids, so penalties matter
  for (auto& p : pending)
    for (int i = 0; i < 30; ++i) p.push_back(i % 2 ? token(rng) : few(rng));
  int64_t prefill_fed = 0;
  int errors = 0;

  for (int step = 0; step < steps; ++step) {
    StepPlan plan;
    plan.step_id = static_cast<uint64_t>(step);
    std::vector<int64_t> row_begin = {0};
    std::vector<int64_t> sampled_row(static_cast<size_t>(n));  // sequence i's logits row
    for (int64_t i = 0; i < n; ++i) {
      if (interleave && i == n / 2) {  // the unsampled prefill: three rows
        plan.batch.seqs.push_back({1000, {1, 2, 3}, prefill_fed, {}, true});
        plan.sampling.push_back({false, 0, SamplingParams{}, 1});
        prefill_fed += 3;
        row_begin.push_back(row_begin.back() + 3);
      }
      plan.batch.seqs.push_back({i, pending[i], fed[i], {}, false});
      plan.sampling.push_back({true, 30, params[i], 77 + static_cast<uint64_t>(i) * 1000003});
      fed[i] += static_cast<int64_t>(pending[i].size());
      row_begin.push_back(row_begin.back() + 1);
      sampled_row[i] = row_begin.back() - 1;
    }
    // Scale 2.5: peaked enough that the GPU's f32 sums over the kept tokens sit far from a bucket edge.
    std::vector<float> values = random_values(static_cast<size_t>(row_begin.back() * vocab), rng, 2.5f);
    if (poison)
      for (int64_t i = 0; i < n; ++i) poison(step, i, values.data() + sampled_row[i] * vocab, vocab);
    StepOutput host{Tensor::from_vector(values, {row_begin.back(), vocab}), row_begin};
    StepOutput on_device{host.logits.to(Device::cuda(0)), row_begin};

    const StepResult want = cpu_bank.sample(plan, host, vocab);
    const StepResult got = gpu_bank.sample(plan, on_device, vocab);
    EXPECT_EQ(got.tokens.size(), want.tokens.size());
    if (got.tokens.size() != want.tokens.size()) return errors;
    for (int64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(::testing::Message() << "step " << step << ", sequence " << i << " (T " << params[i].temperature
                                        << ", top_k " << params[i].top_k << ", top_p " << params[i].top_p
                                        << ", min_p " << params[i].min_p << ", repetition "
                                        << params[i].repetition_penalty << ")");
      const SampledToken &g = got.tokens[i], &w = want.tokens[i];
      EXPECT_EQ(g.error, w.error);
      if (!w.error.empty()) {  // the sequence would end; here it is fed a token and goes on
        ++errors;
        pending[i] = {0};
        continue;
      }
      // A draw within ~1e-6 of a bucket edge could differ (f32 on the GPU, f64 on the CPU): ~1e-5 per draw here.
      EXPECT_EQ(g.token, w.token);
      // f32 log-sum-exp over the vocabulary against f64: a few 1e-6; 1e-4 leaves room for |logprob| ~ 20.
      EXPECT_NEAR(g.logprob, w.logprob, 1e-4);
      EXPECT_EQ(g.top.size(), w.top.size());
      for (size_t j = 0; j < std::min(g.top.size(), w.top.size()); ++j) {
        EXPECT_EQ(g.top[j].token, w.top[j].token) << "top entry " << j;
        EXPECT_NEAR(g.top[j].logprob, w.top[j].logprob, 1e-4) << "top entry " << j;
      }
      pending[i] = {w.token};
    }
  }
  return errors;
}

TEST(GpuSampler, DrawsTheCpuSamplersTokens) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int64_t vocab = 5003;
  const std::vector<SamplingParams> params = {
      make(0.0f, 0, 1.0f, 0.0f, 3),                  // greedy inside a drawn batch
      penalised(make(0.0f, 0, 1.0f, 0.0f)),          // greedy on penalised logits
      make(0.8f, 40, 1.0f, 0.0f),                    // top-k
      penalised(make(1.0f, 64, 0.9f, 0.0f, 5)),      // top-k, top-p, penalties, logprobs
      make(1.3f, 1, 1.0f, 0.0f),                     // top_k = 1
      make(1.0f, 0, 1.0f, 0.0f),                     // the whole vocabulary
      make(0.7f, 0, 0.9f, 0.0f, 20),                 // top-p over the whole vocabulary
      penalised(make(1.2f, 0, 1.0f, 0.05f)),         // min-p over the whole vocabulary, penalties
      make(1.0f, 0, 0.5f, 0.1f),                     // top-p and min-p
      make(0.9f, static_cast<int32_t>(vocab), 0.8f, 0.0f),  // top_k = vocab: the whole vocabulary
  };
  expect_same_as_cpu(params, 8, vocab, /*interleave=*/true);
}

TEST(GpuSampler, GreedyBatchesUseTheArgmax) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const std::vector<SamplingParams> params = {make(0.0f, 0, 1.0f, 0.0f), penalised(make(0.0f, 0, 1.0f, 0.0f, 4)),
                                              make(0.0f, 5, 0.5f, 0.0f, 1)};
  expect_same_as_cpu(params, 5, 32003, /*interleave=*/false);
}

// Issue 12: NaN, +inf and all -inf rows (from the logits, or made +inf by repetition_penalty 1e-40) fail alone
// with the CPU's error; a few -inf logits, or repetition_penalty 3e38 (seen tokens' negative logits to -inf),
// still sample the CPU's tokens.
TEST(GpuSampler, UnsampleableRowsFailAloneWithTheCpuSamplersError) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int64_t vocab = 5003;
  SamplingParams tiny = make(1.0f, 0, 1.0f, 0.0f), huge = make(0.0f, 0, 1.0f, 0.0f, 2);
  tiny.repetition_penalty = 1e-40f;
  huge.repetition_penalty = 3e38f;
  const std::vector<SamplingParams> params = {
      make(0.0f, 0, 1.0f, 0.0f, 3), make(0.8f, 40, 1.0f, 0.0f), make(1.0f, 0, 0.9f, 0.0f, 2),
      penalised(make(0.0f, 0, 1.0f, 0.0f)), tiny, huge};
  // Step 1: NaN in sequence 0, +inf in 2; step 2: every logit -inf in 1, a third of them -inf in 3 (fine).
  const Poison poison = [](int step, int64_t seq, float* row, int64_t v) {
    if (step == 1 && seq == 0) row[v / 2] = NAN;
    if (step == 1 && seq == 2) row[7] = INFINITY;
    for (int64_t j = 0; j < v; ++j)
      if (step == 2 && (seq == 1 || (seq == 3 && j % 3 == 0))) row[j] = -INFINITY;
  };
  // 3 poisoned rows, and the 1e-40 sequence at each of its 4 steps (its 30 seen tokens include positive logits).
  EXPECT_EQ(expect_same_as_cpu(params, 4, vocab, /*interleave=*/true, poison), 3 + 4);
}

// What the kernels cannot do is refused (SamplingParams::validate refuses it before a request is queued).
TEST(GpuSampler, RefusesTopKBeyondTheKernels) {
  LATTICE_SKIP_WITHOUT_CUDA();
  DeviceContext device(0);
  GpuSampler sampler(device.exec());
  const Tensor logits = Tensor::zeros({1, 1000}, DType::f32, Device::cuda(0));
  const SamplingParams p = make(1.0f, 65, 1.0f, 0.0f);
  const std::vector<int32_t> context = {1, 2};
  try {
    sampler.sample(logits, {{0, &p, 1, &context, 2}});
    FAIL() << "top_k = 65 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_k = 65 is not supported on the GPU"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lattice::testing::cuda
