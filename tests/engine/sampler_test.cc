// The sampler: greedy, seeded draws, each filter, each penalty and log-probabilities, against values
// computed independently in the test.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/core/error.h"
#include "engine/sampler/sampler.h"

namespace lattice {
namespace {

SampledToken sample_once(const SamplingParams& p, const std::vector<float>& logits,
                         const std::vector<int32_t>& context = {}, size_t prompt_len = 0, uint64_t seed = 0) {
  SequenceSampler s(p, seed);
  return s.sample(logits.data(), static_cast<int64_t>(logits.size()), context, prompt_len);
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0;
  return p;
}

// Draw counts over `n` draws from one sampler (one generator stream).
std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits, int n, uint64_t seed) {
  SequenceSampler s(p, seed);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits.data(), static_cast<int64_t>(logits.size()), {}, 0).token];
  return counts;
}

std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

TEST(Sampler, GreedyPicksTheFirstMaximum) {
  EXPECT_EQ(sample_once(greedy(), {0.1f, 3.0f, -1.0f, 3.0f}).token, 1);
  SamplingParams top1;
  top1.top_k = 1;
  EXPECT_EQ(sample_once(top1, {0.1f, 2.0f, 5.0f}).token, 2);
}

TEST(Sampler, LogprobsAreTheRawLogSoftmax) {
  SamplingParams p = greedy();
  p.logprobs = 3;
  p.repetition_penalty = 1.5f;  // penalties change the choice, not the reported distribution
  const std::vector<float> logits = {1.0f, 4.0f, 2.0f, -3.0f, 3.5f};
  const SampledToken t = sample_once(p, logits, {1}, 1);
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  auto lp = [&](int i) { return logits[i] - std::log(z); };
  EXPECT_EQ(t.token, 4);  // 4.0 / 1.5 < 3.5
  EXPECT_NEAR(t.logprob, lp(4), 1e-6);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].token, 1);
  EXPECT_EQ(t.top[1].token, 4);
  EXPECT_EQ(t.top[2].token, 2);
  for (const auto& e : t.top) EXPECT_NEAR(e.logprob, lp(e.token), 1e-6);
}

TEST(Sampler, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  SamplingParams p;
  const std::vector<float> logits(50, 0.0f);  // uniform: every draw is up to the generator
  auto draws = [&](uint64_t seed) {
    SequenceSampler s(p, seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 20; ++i) out.push_back(s.sample(logits.data(), 50, {}, 0).token);
    return out;
  };
  EXPECT_EQ(draws(7), draws(7));
  EXPECT_NE(draws(7), draws(8));
}

TEST(Sampler, TemperatureDrawsFollowTheSoftmax) {
  SamplingParams p;
  p.temperature = 2.0f;
  const std::vector<double> probs = {0.6, 0.3, 0.1};
  const int n = 20000;
  const auto counts = histogram(p, logits_for(probs), n, 11);
  // At temperature 2 the distribution is proportional to sqrt(p).
  double z = 0;
  for (double q : probs) z += std::sqrt(q);
  for (int i = 0; i < 3; ++i) {
    const double expect = std::sqrt(probs[i]) / z;
    const double sigma = std::sqrt(n * expect * (1 - expect));
    EXPECT_NEAR(counts.count(i) ? counts.at(i) : 0, n * expect, 5 * sigma) << "token " << i;
  }
}

TEST(Sampler, TopKTopPAndMinPCutTheTail) {
  const std::vector<float> logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingParams k2;
  k2.top_k = 2;
  SamplingParams p07;
  p07.top_p = 0.7f;  // 0.5 < 0.7, 0.5 + 0.3 >= 0.7: keeps two tokens
  SamplingParams m04;
  m04.min_p = 0.4f;  // keeps p >= 0.2: two tokens
  for (const SamplingParams& p : {k2, p07, m04}) {
    const auto counts = histogram(p, logits, 4000, 3);
    EXPECT_EQ(counts.size(), 2u);
    EXPECT_TRUE(counts.count(0) && counts.count(1));
    // Renormalised: 0.5 / 0.8 = 0.625 of the draws go to token 0.
    EXPECT_NEAR(counts.at(0) / 4000.0, 0.625, 0.04);
  }
}

TEST(Sampler, RepetitionPenaltyCoversPromptAndOutput) {
  SamplingParams p = greedy();
  p.repetition_penalty = 2.0f;
  // Token 0 (logit 2.0) was seen: 2.0 / 2 = 1.0 < 1.5; a negative seen logit is multiplied instead.
  EXPECT_EQ(sample_once(p, {2.0f, 1.5f, -1.0f}, {0}, 1).token, 1);
  EXPECT_EQ(sample_once(p, {-0.2f, -0.3f}, {0}, 0).token, 1);  // -0.4 < -0.3
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountOnlyGeneratedTokens) {
  SamplingParams p = greedy();
  p.presence_penalty = 0.25f;
  p.frequency_penalty = 0.5f;
  // Token 0 generated twice: 3.0 - 0.25 - 2 * 0.5 = 1.75 < 2.5.
  EXPECT_EQ(sample_once(p, {3.0f, 2.5f}, {0, 0}, 0).token, 1);
  // The same tokens in the prompt are not penalised.
  EXPECT_EQ(sample_once(p, {3.0f, 2.5f}, {0, 0}, 2).token, 0);
}

TEST(Sampler, NonFiniteLogitsAreAnError) {
  SamplingParams p;
  EXPECT_THROW(sample_once(p, {1.0f, INFINITY, 0.0f}), Error);
  EXPECT_THROW(sample_once(greedy(), {NAN, 1.0f}), Error);
}

TEST(Sampler, InvalidParametersAreNamed) {
  auto error_of = [](SamplingParams p) {
    try {
      p.validate(100);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplingParams p;
  p.max_tokens = 0;
  EXPECT_NE(error_of(p).find("max_tokens must be > 0"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_NE(error_of(p).find("top_p"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_NE(error_of(p).find("temperature"), std::string::npos);
  p = {};
  p.stop_token_ids = {100};
  EXPECT_NE(error_of(p).find("stop token id 100"), std::string::npos);
  EXPECT_EQ(error_of(SamplingParams{}), "");
}

}  // namespace
}  // namespace lattice
