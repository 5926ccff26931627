// Greedy sampling on the GPU against an f64 host reference: the argmax (lowest index among ties, NaNs never
// chosen) and its log-softmax log-probability.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cuda/sampling.cuh"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace gpu = kernels::cuda;

template <typename T>
void check_greedy(int64_t rows, int64_t vocab) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", rows " << rows << ", vocab "
                                    << vocab);
  std::mt19937 rng(seed);
  auto logits = round_to<T>(random_values(static_cast<size_t>(rows * vocab), rng, 4.0f));
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  if (rows > 1) {  // row 1: a tie at the maximum; the lower index wins
    const int64_t lo = pick(rng) / 2, hi = lo + 1 + pick(rng) / 2;
    logits[vocab + lo] = logits[vocab + hi] = 100.0f;
  }
  if (rows > 2)  // row 2: NaNs are skipped
    for (int i = 0; i < 10; ++i) logits[2 * vocab + pick(rng)] = NAN;

  std::vector<int32_t> want_token(rows);
  std::vector<float> want_logprob(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    int64_t best = -1;
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best])) best = i;
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(row[i])) sum += std::exp(static_cast<double>(row[i]) - row[best]);
    want_token[r] = static_cast<int32_t>(best);
    want_logprob[r] = static_cast<float>(-std::log(sum));
  }

  auto d_logits = to_device<T>(logits);
  DeviceBuffer<int32_t> d_tokens(static_cast<size_t>(rows));
  DeviceBuffer<float> d_logprobs(static_cast<size_t>(rows));
  gpu::greedy_sample(d_logits.get(), rows, vocab, d_tokens.get(), d_logprobs.get(), nullptr);
  const auto tokens = d_tokens.download_raw<int32_t>();
  const auto logprobs = d_logprobs.download();
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(tokens[r], want_token[r]) << "row " << r;
  // The logits are identical on both sides (T rounded); the GPU sums exp() in f32 over the vocabulary, a
  // relative error of a few 1e-7 on the sum, i.e. an absolute error of that size on the log: 1e-5.
  EXPECT_TRUE(all_close(logprobs.data(), want_logprob.data(), rows, 1e-5, 1e-5));
}

TEST(CudaGreedySample, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_greedy<float>(5, 32003); }
TEST(CudaGreedySample, Bf16LargeVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_greedy<__nv_bfloat16>(3, 128257); }
TEST(CudaGreedySample, F16SmallVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_greedy<__half>(4, 97); }

// Without a logprobs buffer only the tokens are written.
TEST(CudaGreedySample, TokensOnly) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 3.0f, 3.0f, 0.0f};
  auto d_logits = to_device<float>(logits);
  DeviceBuffer<int32_t> d_tokens(2);
  gpu::greedy_sample(d_logits.get(), 2, 3, d_tokens.get(), nullptr, nullptr);
  EXPECT_EQ(d_tokens.download_raw<int32_t>(), (std::vector<int32_t>{1, 0}));
}

}  // namespace
}  // namespace lattice::testing::cuda
