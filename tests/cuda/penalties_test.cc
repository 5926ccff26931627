// Sampling penalties and raw-logit log-probabilities on the GPU against the reference rules of
// kernels/cpu/penalties.h (repetition over the whole context, then presence/frequency over generated tokens).
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/penalties.h"
#include "kernels/cuda/penalties.cuh"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace gpu = kernels::cuda;

// The reference rules (kernels/cpu/penalties.h, what the engine's CPU sampler runs) for one row.
std::vector<float> penalised(std::vector<float> x, const std::vector<int32_t>& context, int32_t prompt_len,
                             const gpu::PenaltyRow& p) {
  kernels::cpu::apply_penalties_f32(x.data(), static_cast<int64_t>(x.size()), context.data(),
                                    static_cast<int64_t>(context.size()), prompt_len, p.repetition, p.presence,
                                    p.frequency);
  return x;
}

template <typename T>
void check_penalties(int64_t vocab) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", vocab " << vocab);
  std::mt19937 rng(seed);
  const int64_t rows = 4;
  const auto logits = round_to<T>(random_values(static_cast<size_t>(rows * vocab), rng, 3.0f));
  // Rows: all three penalties with repeats; repetition only; presence/frequency only; none at all.
  const float settings[rows][3] = {{1.3f, 0.5f, 0.25f}, {0.8f, 0.0f, 0.0f}, {1.0f, -0.7f, 1.1f}, {1.0f, 0.0f, 0.0f}};
  std::uniform_int_distribution<int32_t> common(0, 20);  // small ids repeat often
  std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> tokens;
  std::vector<gpu::PenaltyRow> params;
  std::vector<float> want;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t prompt_len = 37 + static_cast<int32_t>(r), generated = 600 + 13 * static_cast<int32_t>(r);
    std::vector<int32_t> context;
    for (int32_t i = 0; i < prompt_len + generated; ++i) context.push_back(i % 3 == 0 ? any(rng) : common(rng));
    params.push_back({settings[r][0], settings[r][1], settings[r][2], static_cast<int32_t>(tokens.size()),
                      static_cast<int32_t>(context.size()), prompt_len});
    tokens.insert(tokens.end(), context.begin(), context.end());
    const std::vector<float> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
    const auto adjusted = penalised(row, context, prompt_len, params.back());
    want.insert(want.end(), adjusted.begin(), adjusted.end());
  }

  auto d_logits = to_device<T>(logits);
  auto d_tokens = ints_to_device(tokens);
  DeviceBuffer<gpu::PenaltyRow> d_params(params.size());
  d_params.upload_raw(params);
  DeviceBuffer<float> d_out(want.size());
  const size_t workspace_bytes = gpu::penalties_workspace_bytes(rows, vocab);
  DeviceBuffer<uint32_t> workspace(workspace_bytes / sizeof(uint32_t));  // poisoned: the kernel clears it
  gpu::apply_penalties(d_logits.get(), d_out.get(), rows, vocab, d_params.get(), d_tokens.get(), workspace.get(),
                       workspace_bytes, nullptr);
  const auto got = d_out.download();
  // The same correctly rounded f32 operations on both sides, neither contracting to FMA: the same bits.
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()), 0.0, 0.0));
  EXPECT_TRUE(all_close(d_logits.download().data(), logits.data(), static_cast<int64_t>(logits.size()), 0.0, 0.0))
      << "the raw logits must stay untouched";
}

TEST(CudaPenalties, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_penalties<float>(32003); }
TEST(CudaPenalties, Bf16OddVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_penalties<__nv_bfloat16>(1001); }

// The model's log-probability of tokens chosen elsewhere (e.g. from penalised logits), NaNs ignored.
TEST(CudaTokenLogprobs, F32AndF16) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  const int64_t rows = 3, vocab = 5003;
  auto logits = round_to<__half>(random_values(static_cast<size_t>(rows * vocab), rng, 4.0f));
  logits[vocab + 17] = NAN;
  const std::vector<int32_t> chosen = {0, 4999, 123};
  std::vector<float> want;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    double top = -INFINITY, sum = 0;
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(row[i])) top = std::max(top, static_cast<double>(row[i]));
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(row[i])) sum += std::exp(row[i] - top);
    want.push_back(static_cast<float>(row[chosen[r]] - top - std::log(sum)));
  }
  auto d_chosen = ints_to_device(chosen);
  for (bool half : {false, true}) {
    DeviceBuffer<float> d_logprobs(static_cast<size_t>(rows));
    if (half) {
      auto d_logits = to_device<__half>(logits);
      gpu::token_logprobs(d_logits.get(), rows, vocab, d_chosen.get(), d_logprobs.get(), nullptr);
    } else {
      auto d_logits = to_device<float>(logits);
      gpu::token_logprobs(d_logits.get(), rows, vocab, d_chosen.get(), d_logprobs.get(), nullptr);
    }
    // Identical inputs; f32 sum of exp over the vocabulary against f64: ~1e-6 absolute on the log.
    EXPECT_TRUE(all_close(d_logprobs.download().data(), want.data(), rows, 1e-5, 1e-5)) << (half ? "f16" : "f32");
  }
}

}  // namespace
}  // namespace lattice::testing::cuda
