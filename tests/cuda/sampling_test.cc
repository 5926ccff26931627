// Sampling on the GPU against f64 host references: greedy (the argmax, lowest index among ties, NaNs never
// chosen) and seeded top-k / top-p / min-p / temperature draws against the reference rules of
// kernels/cpu/sampling.h (what the engine's CPU sampler runs) with the same uniform; both with the chosen
// token's log-softmax log-probability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <utility>

#include "kernels/cpu/sampling.h"
#include "kernels/cuda/sample_top_k.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/sampling_rng.h"
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
    const int64_t lo = pick(rng) / 2, hi = lo + 1 + pick(rng) % (vocab - lo - 1);  // lo < hi < vocab
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
  DeviceBuffer<int32_t> d_tokens(static_cast<size_t>(rows)), d_status(static_cast<size_t>(rows));
  DeviceBuffer<float> d_logprobs(static_cast<size_t>(rows));
  gpu::greedy_sample(d_logits.get(), rows, vocab, d_tokens.get(), d_logprobs.get(), d_status.get(), nullptr);
  const auto tokens = d_tokens.download_raw<int32_t>();
  const auto logprobs = d_logprobs.download();
  const auto status = d_status.download_raw<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(tokens[r], want_token[r]) << "row " << r;
    EXPECT_EQ(status[r], static_cast<int32_t>(kernels::cpu::check_logits(logits.data() + r * vocab, vocab)))
        << "row " << r;
  }
  // The logits are identical on both sides (T rounded); the GPU sums exp() in f32 over the vocabulary, a
  // relative error of a few 1e-7 on the sum, i.e. an absolute error of that size on the log: 1e-5.
  EXPECT_TRUE(all_close(logprobs.data(), want_logprob.data(), rows, 1e-5, 1e-5));
}

TEST(CudaGreedySample, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_greedy<float>(5, 32003); }
TEST(CudaGreedySample, Bf16LargeVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_greedy<__nv_bfloat16>(3, 128257); }
TEST(CudaGreedySample, F16SmallVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_greedy<__half>(4, 97); }

// The greedy kernel's one pass also says whether each row can be sampled, by kernels::cpu::check_logits's rule:
// a NaN anywhere, else a +inf, else a row of nothing but -inf; a good row beside them keeps its token and logprob.
TEST(CudaGreedySample, ChecksEachRowInTheSamePass) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int64_t vocab = 3000;
  std::mt19937 rng(fresh_seed());
  std::vector<float> logits = random_values(static_cast<size_t>(5 * vocab), rng, 2.0f);
  logits[1 * vocab + 7] = NAN;
  logits[1 * vocab + 9] = INFINITY;  // NaN wins over +inf
  logits[2 * vocab + 2999] = INFINITY;
  std::fill_n(logits.begin() + 3 * vocab, vocab, -INFINITY);
  std::fill_n(logits.begin() + 4 * vocab, vocab, -INFINITY);
  logits[4 * vocab + 5] = -3.0f;  // one finite value among -inf: a sampleable row
  auto d_logits = to_device<float>(logits);
  DeviceBuffer<int32_t> d_tokens(5), d_status(5);
  DeviceBuffer<float> d_logprobs(5);
  gpu::greedy_sample(d_logits.get(), 5, vocab, d_tokens.get(), d_logprobs.get(), d_status.get(), nullptr);
  const auto tokens = d_tokens.download_raw<int32_t>();
  const auto status = d_status.download_raw<int32_t>();
  const auto logprobs = d_logprobs.download();
  for (int64_t r = 0; r < 5; ++r)
    EXPECT_EQ(status[r], static_cast<int32_t>(kernels::cpu::check_logits(logits.data() + r * vocab, vocab)))
        << "row " << r;
  EXPECT_EQ(status[0], static_cast<int32_t>(kernels::cpu::LogitsCheck::ok));
  EXPECT_EQ(status[1], static_cast<int32_t>(kernels::cpu::LogitsCheck::nan));
  EXPECT_EQ(status[2], static_cast<int32_t>(kernels::cpu::LogitsCheck::positive_infinity));
  EXPECT_EQ(status[3], static_cast<int32_t>(kernels::cpu::LogitsCheck::all_negative_infinity));
  EXPECT_EQ(status[4], static_cast<int32_t>(kernels::cpu::LogitsCheck::ok));
  EXPECT_EQ(tokens[2], 2999);
  EXPECT_EQ(tokens[4], 5);
  EXPECT_EQ(logprobs[4], 0.0f);  // the only finite logit has all the probability: exp(0) / 1
  const int64_t best = std::max_element(logits.begin(), logits.begin() + vocab) - logits.begin();
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - logits[best]);
  EXPECT_EQ(tokens[0], best);
  EXPECT_NEAR(logprobs[0], -std::log(sum), 1e-5);  // f32 sum over 3000 terms, as in check_greedy
}

// Without a logprobs buffer only the tokens are written.
TEST(CudaGreedySample, TokensOnly) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 3.0f, 3.0f, 0.0f};
  auto d_logits = to_device<float>(logits);
  DeviceBuffer<int32_t> d_tokens(2);
  gpu::greedy_sample(d_logits.get(), 2, 3, d_tokens.get(), nullptr, nullptr, nullptr);
  EXPECT_EQ(d_tokens.download_raw<int32_t>(), (std::vector<int32_t>{1, 0}));
}

// The reference draw (kernels/cpu/sampling.h, f64) for one row with the shared uniform; NaN logits, which the
// kernel never draws, enter as -inf (weight 0).
int32_t reference_draw(const float* row, int64_t vocab, const gpu::SamplingRow& p) {
  std::vector<float> x(row, row + vocab);
  for (float& v : x)
    if (std::isnan(v)) v = -INFINITY;
  return kernels::cpu::sample_token(x.data(), vocab, {p.temperature, p.top_k, p.top_p, p.min_p},
                                    kernels::sampling_uniform(p.seed, p.offset));
}

double log_softmax(const float* row, int64_t vocab, int32_t token) {
  double top = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isnan(row[i])) top = std::max(top, static_cast<double>(row[i]));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isnan(row[i])) sum += std::exp(row[i] - top);
  return row[token] - top - std::log(sum);
}

// Runs sample_top_k over `logits` ([params.size(), vocab]) and returns the tokens and their log-probabilities.
template <typename T>
std::pair<std::vector<int32_t>, std::vector<float>> sample_on_gpu(const std::vector<T>& logits, int64_t vocab,
                                                                  const std::vector<gpu::SamplingRow>& params) {
  auto d_logits = to_device<T>(logits);
  DeviceBuffer<gpu::SamplingRow> d_params(params.size());
  d_params.upload_raw(params);
  DeviceBuffer<int32_t> d_tokens(params.size());
  DeviceBuffer<float> d_logprobs(params.size());
  gpu::sample_top_k(d_logits.get(), static_cast<int64_t>(params.size()), vocab, d_params.get(), d_tokens.get(),
                    d_logprobs.get(), nullptr);
  return {d_tokens.download_raw<int32_t>(), d_logprobs.download()};
}

template <typename T>
void check_top_k(int64_t rows, int64_t vocab) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", rows " << rows << ", vocab "
                                    << vocab);
  std::mt19937 rng(seed);
  // Scale 2: the top few logits are close enough that draws do not always take the first.
  auto logits = round_to<T>(random_values(static_cast<size_t>(rows * vocab), rng, 2.0f));
  std::uniform_int_distribution<int32_t> k_dist(1, gpu::kMaxTopK);
  std::uniform_real_distribution<float> unit(0.05f, 1.0f);
  std::vector<gpu::SamplingRow> params(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) params[r] = {unit(rng) * 2.0f, k_dist(rng), unit(rng), 0, rng(), static_cast<uint64_t>(r)};
  params[0].top_k = 1;       // greedy through top-k
  if (rows > 1) params[1].top_p = 1.0f;
  if (rows > 2) params[2].top_k = gpu::kMaxTopK;
  if (rows > 3) params[3] = {1.5f, gpu::kMaxTopK, 1.0f, 0.2f, rng(), 3};  // min-p cuts what top-p keeps

  const auto [tokens, logprobs] = sample_on_gpu(logits, vocab, params);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    // f32 weights on the GPU against f64 here: a draw within ~1e-6 of a bucket edge could differ; with 53-bit
    // uniforms that happens with probability ~1e-6 per row.
    EXPECT_EQ(tokens[r], reference_draw(row, vocab, params[r]))
        << "row " << r << " (k " << params[r].top_k << ", p " << params[r].top_p << ", T " << params[r].temperature
        << ")";
    if (tokens[r] >= 0 && tokens[r] < vocab) {
      EXPECT_NEAR(logprobs[r], log_softmax(row, vocab, tokens[r]), 1e-5 + 1e-5 * std::fabs(logprobs[r])) << "row " << r;
    }
  }
}

TEST(CudaSampleTopK, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_top_k<float>(9, 32003); }
TEST(CudaSampleTopK, Bf16LargeVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_top_k<__nv_bfloat16>(4, 128257); }
TEST(CudaSampleTopK, F16SmallVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_top_k<__half>(6, 50); }

// top_k above the vocabulary means the whole vocabulary (kernels/cpu/sampling.h): over a 10-token row whose
// logits are not sorted by index (so a walk by rank and the reference's walk in index order draw differently),
// k = 11 and k = 64 draw exactly the token k = 0 draws for the same (seed, offset), under plain temperature,
// top-p and min-p, and that token is the reference's, with its log-softmax. Fixed seeds: the same rows on every
// run; the top-p (0.7) and min-p (0.1) cuts sit 0.03 and 0.0005 from the nearest weight, far beyond f32 error.
TEST(CudaSampleTopK, TopKAboveVocabularyIsTheWholeVocabulary) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const std::vector<float> row = {-1.0f, 2.0f, 0.5f, 1.5f, -0.5f, 1.0f, 0.0f, 2.5f, -2.0f, 0.25f};
  const int64_t vocab = static_cast<int64_t>(row.size());
  const std::vector<std::pair<float, float>> rules = {{1.0f, 0.0f}, {0.7f, 0.0f}, {1.0f, 0.1f}};  // (top_p, min_p)
  const std::vector<int32_t> ks = {0, static_cast<int32_t>(vocab) + 1, gpu::kMaxTopK};
  std::vector<float> logits;
  std::vector<gpu::SamplingRow> params;
  for (const auto& [top_p, min_p] : rules)
    for (uint64_t offset = 0; offset < 16; ++offset)
      for (int32_t k : ks) {
        logits.insert(logits.end(), row.begin(), row.end());
        params.push_back({1.3f, k, top_p, min_p, 2024, offset});
      }
  const auto [tokens, logprobs] = sample_on_gpu(logits, vocab, params);
  for (size_t r = 0; r < params.size(); ++r) {
    SCOPED_TRACE(::testing::Message() << "row " << r << " (k " << params[r].top_k << ", p " << params[r].top_p
                                      << ", min_p " << params[r].min_p << ", offset " << params[r].offset << ")");
    EXPECT_EQ(tokens[r], tokens[r - r % ks.size()]);  // the k = 0 row of the same draw
    EXPECT_EQ(tokens[r], reference_draw(row.data(), vocab, params[r]));
    if (tokens[r] >= 0 && tokens[r] < vocab) {
      EXPECT_NEAR(logprobs[r], log_softmax(row.data(), vocab, tokens[r]), 1e-5 + 1e-5 * std::fabs(logprobs[r]));
    }
  }
}

// The same (seed, offset) gives the same token wherever the row sits in the batch; 64 < k < vocab is refused
// per row with token -1.
TEST(CudaSampleTopK, DrawDependsOnSeedAndOffsetOnly) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int64_t vocab = 1000;
  std::mt19937 rng(fresh_seed());
  const auto row = random_values(static_cast<size_t>(vocab), rng, 0.5f);
  std::vector<float> logits;
  for (int r = 0; r < 4; ++r) logits.insert(logits.end(), row.begin(), row.end());
  const std::vector<gpu::SamplingRow> params = {{1.0f, 40, 0.9f, 0, 7, 3}, {1.0f, 40, 0.9f, 0, 8, 3},
                                                {1.0f, 40, 0.9f, 0, 7, 3}, {1.0f, 100, 1.0f, 0, 7, 3}};
  auto d_logits = to_device<float>(logits);
  DeviceBuffer<gpu::SamplingRow> d_params(params.size());
  d_params.upload_raw(params);
  DeviceBuffer<int32_t> d_tokens(params.size());
  gpu::sample_top_k(d_logits.get(), 4, vocab, d_params.get(), d_tokens.get(), nullptr, nullptr);
  const auto tokens = d_tokens.download_raw<int32_t>();
  EXPECT_EQ(tokens[0], tokens[2]);
  EXPECT_EQ(tokens[0], reference_draw(row.data(), vocab, params[0]));
  EXPECT_EQ(tokens[1], reference_draw(row.data(), vocab, params[1]));
  EXPECT_EQ(tokens[3], -1);
}

// Samples `rows` copies of `row` on the GPU (row r with params_for(r)) and counts each token drawn; draws
// outside the vocabulary are not counted, so the counts add up to `rows` only when every draw is valid.
std::vector<int64_t> draw_counts(const std::vector<float>& row, int64_t rows,
                                 const std::function<gpu::SamplingRow(int64_t)>& params_for) {
  const int64_t vocab = static_cast<int64_t>(row.size());
  std::vector<float> logits;
  std::vector<gpu::SamplingRow> params;
  for (int64_t r = 0; r < rows; ++r) {
    logits.insert(logits.end(), row.begin(), row.end());
    params.push_back(params_for(r));
  }
  auto d_logits = to_device<float>(logits);
  DeviceBuffer<gpu::SamplingRow> d_params(params.size());
  d_params.upload_raw(params);
  DeviceBuffer<int32_t> d_tokens(params.size());
  gpu::sample_top_k(d_logits.get(), rows, vocab, d_params.get(), d_tokens.get(), nullptr, nullptr);
  std::vector<int64_t> counts(static_cast<size_t>(vocab), 0);
  for (int32_t t : d_tokens.download_raw<int32_t>())
    if (t >= 0 && t < vocab) ++counts[t];
  return counts;
}

// Frequencies over many offsets follow softmax(logits / T) on a small vocabulary (k = vocab, top_p = 1):
// each within 5 standard deviations of its expected count.
TEST(CudaSampleTopK, FrequenciesFollowTheSoftmax) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int64_t vocab = 6, rows = 20000;
  const std::vector<float> row = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 1.0f};
  const float temperature = 0.8f;
  const std::vector<int64_t> counts = draw_counts(row, rows, [&](int64_t r) {
    return gpu::SamplingRow{temperature, static_cast<int32_t>(vocab), 1.0f, 0, 12345, static_cast<uint64_t>(r)};
  });
  ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), rows) << "a draw fell outside the vocabulary";
  double total = 0;
  for (float x : row) total += std::exp(x / temperature);
  for (int64_t i = 0; i < vocab; ++i) {
    const double prob = std::exp(row[i] / temperature) / total;
    const double expected = prob * rows, sigma = std::sqrt(rows * prob * (1 - prob));
    EXPECT_NEAR(static_cast<double>(counts[i]), expected, 5 * sigma) << "token " << i;
  }
}

// The top-n list: the n largest raw logits (lower index among equals, NaNs skipped) with their log-softmax,
// padded with -1 / NaN when the row has fewer than n non-NaN logits.
template <typename T>
void check_top_logprobs(int64_t rows, int64_t vocab, int n) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", vocab " << vocab << ", n " << n);
  std::mt19937 rng(seed);
  auto logits = round_to<T>(random_values(static_cast<size_t>(rows * vocab), rng, 3.0f));
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  for (int64_t r = 0; r < rows; ++r) {
    logits[r * vocab + pick(rng)] = 9.0f;  // a tie at the top
    logits[r * vocab + pick(rng)] = 9.0f;
    for (int i = 0; i < 5; ++i) logits[r * vocab + pick(rng)] = NAN;
  }
  auto d_logits = to_device<T>(logits);
  DeviceBuffer<int32_t> d_tokens(static_cast<size_t>(rows * n));
  DeviceBuffer<float> d_logprobs(static_cast<size_t>(rows * n));
  gpu::top_logprobs(d_logits.get(), rows, vocab, n, d_tokens.get(), d_logprobs.get(), nullptr);
  const auto tokens = d_tokens.download_raw<int32_t>();
  const auto logprobs = d_logprobs.download();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    std::vector<int32_t> order;
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(row[i])) order.push_back(static_cast<int32_t>(i));
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    for (int i = 0; i < n; ++i) {
      SCOPED_TRACE(::testing::Message() << "row " << r << ", entry " << i);
      if (static_cast<size_t>(i) < order.size()) {
        EXPECT_EQ(tokens[r * n + i], order[i]);
        EXPECT_NEAR(logprobs[r * n + i], log_softmax(row, vocab, order[i]), 1e-5 + 1e-5 * std::fabs(logprobs[r * n + i]));
      } else {
        EXPECT_EQ(tokens[r * n + i], -1);
        EXPECT_TRUE(std::isnan(logprobs[r * n + i]));
      }
    }
  }
}

TEST(CudaTopLogprobs, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_top_logprobs<float>(3, 5003, 20); }
TEST(CudaTopLogprobs, Bf16LargeVocab) { LATTICE_SKIP_WITHOUT_CUDA(); check_top_logprobs<__nv_bfloat16>(2, 128257, 5); }
TEST(CudaTopLogprobs, PadsShortRows) { LATTICE_SKIP_WITHOUT_CUDA(); check_top_logprobs<__half>(2, 40, 64); }

// top_k = 0: plain temperature, top-p, min-p and both, against the reference. A draw within ~1e-6 of a bucket
// edge, or a weight within 1e-7 of the top-p floor (which the kernel bisects for), could differ (f32 on the GPU):
// rare at these sizes.
TEST(CudaSampleTopK, WholeVocabulary) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  const int64_t vocab = 5003;
  const std::vector<gpu::SamplingRow> params = {
      {1.0f, 0, 1.0f, 0.0f, rng(), 0}, {0.7f, 0, 0.9f, 0.0f, rng(), 1}, {1.3f, 0, 1.0f, 0.05f, rng(), 2},
      {1.0f, 0, 0.5f, 0.1f, rng(), 3}, {0.9f, -1, 0.95f, 0.0f, rng(), 4}, {1.0f, static_cast<int32_t>(vocab), 0.8f, 0.0f, rng(), 5}};
  const int64_t rows = static_cast<int64_t>(params.size());
  auto logits = round_to<float>(random_values(static_cast<size_t>(rows * vocab), rng, 2.0f));
  logits[3 * vocab + 11] = NAN;
  const auto [tokens, logprobs] = sample_on_gpu(logits, vocab, params);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    EXPECT_EQ(tokens[r], reference_draw(row, vocab, params[r])) << "row " << r;
    if (tokens[r] >= 0 && tokens[r] < vocab) {
      EXPECT_NEAR(logprobs[r], log_softmax(row, vocab, tokens[r]), 1e-5 + 1e-5 * std::fabs(logprobs[r])) << "row " << r;
    }
  }
}

// top_k = 0 with top_p = 0.8 over many offsets: frequencies follow the renormalised nucleus, and tokens outside
// it never appear.
TEST(CudaSampleTopK, WholeVocabularyNucleusFrequencies) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int64_t vocab = 6, rows = 20000;
  const std::vector<float> row = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 1.2f};
  const std::vector<int64_t> counts =
      draw_counts(row, rows, [](int64_t r) { return gpu::SamplingRow{1.0f, 0, 0.8f, 0.0f, 777, static_cast<uint64_t>(r)}; });
  ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), rows) << "a draw fell outside the vocabulary";
  // Probabilities: token 4 (2.0) 0.41, 5 (1.2) 0.19, 0 (1.0) 0.15, 1 (0.5) 0.09, ...: the nucleus reaching 0.8 is
  // {4, 5, 0, 1}; computed here rather than trusted.
  double total = 0;
  for (float x : row) total += std::exp(x);
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  std::vector<bool> in_nucleus(static_cast<size_t>(vocab), false);
  double mass = 0, nucleus = 0;
  for (int32_t t : order) {
    in_nucleus[t] = true;
    mass += std::exp(row[t]) / total;
    nucleus += std::exp(row[t]);
    if (mass >= 0.8) break;
  }
  for (int64_t i = 0; i < vocab; ++i) {
    if (!in_nucleus[i]) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the nucleus";
      continue;
    }
    const double prob = std::exp(row[i]) / nucleus;
    const double expected = prob * rows, sigma = std::sqrt(rows * prob * (1 - prob));
    EXPECT_NEAR(static_cast<double>(counts[i]), expected, 5 * sigma) << "token " << i;
  }
}

}  // namespace
}  // namespace lattice::testing::cuda
