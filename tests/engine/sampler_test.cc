// The sampler: greedy, counter-based draws, each filter, each penalty and log-probabilities, against values
// computed independently in the test (hand-computed penalties, published splitmix64 outputs, softmax
// frequencies within 5 standard deviations).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "engine/core/error.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/sampler_bank.h"
#include "engine/scheduler/scheduler.h"
#include "kernels/cpu/penalties.h"
#include "kernels/sampling_rng.h"

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

// Draw counts over `n` consecutive draws of one sequence (offsets 0 .. n-1: the context grows by one generated
// token per draw; no penalties, so its contents do not matter).
std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits, int n, uint64_t seed) {
  SequenceSampler s(p, seed);
  std::map<int32_t, int> counts;
  std::vector<int32_t> context;
  for (int i = 0; i < n; ++i) {
    const int32_t t = s.sample(logits.data(), static_cast<int64_t>(logits.size()), context, 0).token;
    ++counts[t];
    context.push_back(t);
  }
  return counts;
}

// Each token's count within 5 standard deviations of n * expected[token].
void expect_frequencies(const std::map<int32_t, int>& counts, const std::vector<double>& expected, int n) {
  int total = 0;
  for (const auto& [token, c] : counts) {
    ASSERT_TRUE(token >= 0 && token < static_cast<int32_t>(expected.size())) << "token " << token;
    total += c;
  }
  ASSERT_EQ(total, n);
  for (size_t i = 0; i < expected.size(); ++i) {
    const double sigma = std::sqrt(n * expected[i] * (1 - expected[i]));
    const int got = counts.count(static_cast<int32_t>(i)) ? counts.at(static_cast<int32_t>(i)) : 0;
    if (expected[i] == 0)
      EXPECT_EQ(got, 0) << "token " << i << " must never be drawn";
    else
      EXPECT_NEAR(got, n * expected[i], 5 * sigma) << "token " << i;
  }
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
  EXPECT_EQ(sample_once(top1, {0.1f, 5.0f, 5.0f}).token, 1);
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

// The uniform is splitmix64 (published test vector: seeded with 0 it yields 0xe220a8397b1dcdaf,
// 0x6e789e6aa1b965f4, 0x06c45d188009454f): at offset k, output k + 1 of the stream seeded with the mixed seed,
// top 53 bits. It needs no state.
TEST(Sampler, UniformIsSplitmix64OfSeedAndOffset) {
  const uint64_t outputs[] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull, 0x06c45d188009454full};
  for (uint64_t k = 0; k < 3; ++k)
    EXPECT_EQ(kernels::splitmix64_finalize(kernels::kSplitmix64Increment * (k + 1)), outputs[k]) << "output " << k;
  const uint64_t key = kernels::splitmix64_finalize(12345);
  for (uint64_t k = 0; k < 3; ++k)
    EXPECT_EQ(kernels::sampling_uniform(12345, k),
              static_cast<double>(kernels::splitmix64_finalize(key + kernels::kSplitmix64Increment * (k + 1)) >> 11) *
                  0x1.0p-53);
  // Seeds one increment apart (the scheduler's derived seeds for consecutive request ids) are not one stream
  // shifted by one draw.
  const uint64_t derived = 7 * kernels::kSplitmix64Increment + 1;
  int same = 0;
  for (uint64_t k = 0; k < 100; ++k)
    same += kernels::sampling_uniform(derived + kernels::kSplitmix64Increment, k) ==
            kernels::sampling_uniform(derived, k + 1);
  EXPECT_EQ(same, 0);
}

// Known answers from the documented walks, with u taken from the shared uniform: the whole vocabulary is walked
// in index order, top-k candidates by decreasing logit.
TEST(Sampler, DrawWalksTheDocumentedOrder) {
  const std::vector<float> logits = logits_for({0.1, 0.6, 0.3});
  SamplingParams whole;  // top_k = 0
  SamplingParams top2;
  top2.top_k = 2;
  std::vector<int32_t> context;  // grows to give offsets 0, 1, 2, ...
  SequenceSampler a(whole, 99), b(top2, 99);
  for (int offset = 0; offset < 200; ++offset) {
    const double u = kernels::sampling_uniform(99, static_cast<uint64_t>(offset));
    // Index order 0 (0.1), 1 (0.6), 2 (0.3); total 1.
    const int32_t want_whole = u < 0.1 ? 0 : (u < 0.7 ? 1 : 2);
    // Candidates 1 (0.6), 2 (0.3), total 0.9.
    const int32_t want_top2 = u * 0.9 < 0.6 ? 1 : 2;
    EXPECT_EQ(a.sample(logits.data(), 3, context, 0).token, want_whole) << "offset " << offset << ", u " << u;
    EXPECT_EQ(b.sample(logits.data(), 3, context, 0).token, want_top2) << "offset " << offset << ", u " << u;
    context.push_back(0);
  }
}

TEST(Sampler, TemperatureDrawsFollowTheSoftmax) {
  SamplingParams p;
  p.temperature = 2.0f;
  const std::vector<double> probs = {0.6, 0.3, 0.1};
  const int n = 20000;
  // At temperature 2 the distribution is proportional to sqrt(p).
  double z = 0;
  for (double q : probs) z += std::sqrt(q);
  std::vector<double> expected;
  for (double q : probs) expected.push_back(std::sqrt(q) / z);
  expect_frequencies(histogram(p, logits_for(probs), n, 11), expected, n);
}

TEST(Sampler, TopKTopPAndMinPCutTheTail) {
  const std::vector<float> logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingParams k2;
  k2.top_k = 2;
  SamplingParams p07;
  p07.top_p = 0.7f;  // 0.5 < 0.7, 0.5 + 0.3 >= 0.7: keeps two tokens
  SamplingParams m04;
  m04.min_p = 0.4f;  // keeps p >= 0.2: two tokens
  SamplingParams k3p07 = p07;
  k3p07.top_k = 3;  // the same cut among three candidates (0.7 x 0.95 is reached by 0.5 + 0.3)
  const int n = 20000;
  for (const SamplingParams& p : {k2, p07, m04, k3p07}) {
    SCOPED_TRACE(::testing::Message() << "top_k " << p.top_k << ", top_p " << p.top_p << ", min_p " << p.min_p);
    expect_frequencies(histogram(p, logits, n, 3), {0.625, 0.375, 0, 0}, n);  // renormalised 0.5 / 0.8
  }
}

// Over the whole vocabulary, top-p keeps every token whose probability reaches that of the token where the
// decreasing walk reaches top_p: tokens tied with it are all kept. Among top-k candidates the cut is a prefix.
TEST(Sampler, WholeVocabularyTopPKeepsTiesAtTheFloor) {
  const std::vector<float> logits = logits_for({0.4, 0.2, 0.2, 0.2});
  SamplingParams whole;
  whole.top_p = 0.55f;  // 0.4, then 0.2 reaches 0.55: the floor is 0.2, shared by tokens 1, 2 and 3
  SamplingParams top3 = whole;
  top3.top_k = 3;  // candidates 0, 1, 2 (lower index first among equals); 0.4 + 0.2 >= 0.55 x 0.8: keeps 0 and 1
  const int n = 20000;
  expect_frequencies(histogram(whole, logits, n, 5), {0.4, 0.2, 0.2, 0.2}, n);
  expect_frequencies(histogram(top3, logits, n, 5), {2.0 / 3, 1.0 / 3, 0, 0}, n);
}

// kernels/cpu/penalties.h, the rules both samplers run, against hand-computed values.
TEST(Penalties, ReferenceRulesByHand) {
  std::vector<float> x = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  // Prompt {0, 1, 0}; generated {3, 3, 1} plus ids outside the vocabulary (ignored).
  const std::vector<int32_t> context = {0, 1, 0, 3, 3, 1, 7, -1};
  kernels::cpu::apply_penalties_f32(x.data(), 5, context.data(), 8, 3, 2.0f, 0.5f, 0.25f);
  // Repetition once per distinct context token: x0 = 2 / 2 = 1, x1 = -1 * 2 = -2, x3 = 3 / 2 = 1.5.
  // Then generated: token 3 twice: 1.5 - (0.5 + 2 x 0.25) = 0.5; token 1 once: -2 - (0.5 + 0.25) = -2.75.
  EXPECT_EQ(x, (std::vector<float>{1.0f, -2.75f, 0.5f, 0.5f, 1.0f}));

  std::vector<float> y = {2.0f, -1.0f, 0.5f};
  kernels::cpu::apply_penalties_f32(y.data(), 3, context.data(), 3, 3, 1.0f, 0.5f, 0.25f);  // prompt only
  EXPECT_EQ(y, (std::vector<float>{2.0f, -1.0f, 0.5f}));
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

// NaN anywhere, +inf anywhere or nothing but -inf (after penalties) ends the row with an error naming the
// position of the token being sampled; -inf next to a finite logit is a token of probability 0.
TEST(Sampler, UnsampleableLogitsGiveAnErrorNotAnException) {
  auto error_of = [](const SamplingParams& p, const std::vector<float>& logits, std::vector<int32_t> context = {}) {
    return sample_once(p, logits, context, context.size()).error;
  };
  SamplingParams p;
  EXPECT_EQ(error_of(p, {1.0f, INFINITY, 0.0f}),
            "the model produced non-finite logits at position 0 (a logit is +inf after sampling penalties)");
  EXPECT_EQ(error_of(greedy(), {NAN, 1.0f}, {4, 5, 6}),
            "the model produced non-finite logits at position 3 (a logit is NaN after sampling penalties)");
  EXPECT_EQ(error_of(p, {-INFINITY, -INFINITY}),
            "the model produced non-finite logits at position 0 (every logit is -inf after sampling penalties)");
  EXPECT_EQ(error_of(p, {-INFINITY, INFINITY, NAN}),  // NaN is named first
            "the model produced non-finite logits at position 0 (a logit is NaN after sampling penalties)");

  // Extreme but valid repetition penalties (vLLM accepts any finite value > 0). 1e-40 divides the positive
  // logit of a seen token past FLT_MAX: +inf, an error. 3e38 multiplies a negative one past -FLT_MAX: -inf, and
  // the row stays sampleable; the token and its (raw, unpenalised) log-probability are those of the rest.
  p.repetition_penalty = 1e-40f;
  EXPECT_NE(error_of(p, {0.5f, 0.1f, -2.0f}, {0}).find("a logit is +inf"), std::string::npos);
  SamplingParams huge = greedy();
  huge.repetition_penalty = 3e38f;
  huge.logprobs = 3;
  const std::vector<float> logits = {-2.0f, -3.0f, 0.5f};
  const SampledToken t = sample_once(huge, logits, {2, 0}, 2);  // 0 -> -inf; 2 -> 0.5 / 3e38, still the largest
  EXPECT_EQ(t.error, "");
  EXPECT_EQ(t.token, 2);
  const double log_z = std::log(std::exp(-2.0) + std::exp(-3.0) + std::exp(0.5));
  EXPECT_NEAR(t.logprob, 0.5 - log_z, 1e-6);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[1].token, 0);
  EXPECT_NEAR(t.top[1].logprob, -2.0 - log_z, 1e-6);
  // Drawing (temperature 1, whole vocabulary and top-k) never picks a -inf token.
  SamplingParams drawn;
  drawn.repetition_penalty = 3e38f;
  for (int32_t top_k : {0, 3}) {
    drawn.top_k = top_k;
    for (uint64_t seed = 0; seed < 200; ++seed) {
      const SampledToken d = sample_once(drawn, {-2.0f, 1.0f, 1.0f}, {0}, 1, seed);
      EXPECT_EQ(d.error, "");
      EXPECT_NE(d.token, 0) << "seed " << seed << ", top_k " << top_k;
    }
  }
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
  // Any top_k on the CPU; with a GPU sampler's limit, by rank up to it, beyond only the whole vocabulary.
  p = {};
  for (int32_t k : {0, 1, 64, 65, 99, 100, 1000}) {
    p.top_k = k;
    EXPECT_EQ(error_of(p), "") << "top_k " << k;
  }
  p.top_k = 65;
  try {
    p.validate(100, 64);
    ADD_FAILURE() << "top_k 65 accepted with a limit of 64";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_k must be at most 64 when sampling on a GPU (or 0, or the vocabulary "
                                         "size 100, for no limit), got 65"),
              std::string::npos)
        << e.what();
  }
  for (int32_t k : {0, 64, 100, 1000}) {
    p.top_k = k;
    EXPECT_NO_THROW(p.validate(100, 64)) << "top_k " << k;
  }
  EXPECT_EQ(error_of(SamplingParams{}), "");
}

// The scheduler refuses, at add(), what the samplers cannot do (the serve front end turns this into a 400).
TEST(Sampler, SchedulerRefusesTopKBeyondTheKernels) {
  LmShape shape;
  shape.vocab_size = 1000;
  shape.max_positions = 64;
  SchedulerOptions gpu;
  gpu.max_top_k = 64;
  Scheduler scheduler(shape, 8, 4, gpu);
  Request r;
  r.id = 5;
  r.prompt = {1, 2};
  r.params.top_k = 100;
  try {
    scheduler.add(r);
    FAIL() << "top_k = 100 was accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("request 5: "), std::string::npos) << what;
    EXPECT_NE(what.find("top_k must be at most 64"), std::string::npos) << what;
  }
  r.params.top_k = 1000;  // the whole vocabulary
  EXPECT_NO_THROW(scheduler.add(r));
}

// A sequence's draws depend only on (seed, tokens generated so far): the same tokens whether it is batched with
// others or alone, in any row, and when a fresh bank first sees it mid-stream (recomputed from its prompt and
// generated tokens, as after preemption or on another rank).
class SamplerBankDraws : public ::testing::Test {
 protected:
  static constexpr int64_t kVocab = 40;

  // Logits as a function of the sequence and its context length only (what a deterministic model gives).
  static std::vector<float> logits_of(int64_t seq_id, size_t context_len) {
    std::mt19937 rng(static_cast<uint32_t>(seq_id * 1000 + static_cast<int64_t>(context_len)));
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> out(kVocab);
    for (float& x : out) x = dist(rng);
    return out;
  }

  struct Seq {
    int64_t id;
    std::vector<int32_t> tokens;  // prompt, then generated
    size_t prompt_len;
    size_t computed = 0;          // tokens the bank has been fed
    SamplingParams params;
  };

  // One step over `seqs` (in that order): each feeds its unfed tokens and samples; appends the tokens sampled
  // without an error. The rows of the sequences in `nan_ids` get a NaN logit.
  static StepResult step(SamplerBank& bank, std::vector<Seq*> seqs, uint64_t step_id,
                         const std::vector<int64_t>& nan_ids = {}) {
    StepPlan plan;
    plan.step_id = step_id;
    std::vector<float> logits;
    StepOutput out;
    out.row_begin.push_back(0);
    for (Seq* s : seqs) {
      SequenceStep st;
      st.seq_id = s->id;
      st.start_pos = static_cast<int64_t>(s->computed);
      st.tokens.assign(s->tokens.begin() + static_cast<std::ptrdiff_t>(s->computed), s->tokens.end());
      plan.batch.seqs.push_back(st);
      plan.sampling.push_back({true, static_cast<int64_t>(s->prompt_len), s->params, 1000 + static_cast<uint64_t>(s->id)});
      auto row = logits_of(s->id, s->tokens.size());
      if (std::find(nan_ids.begin(), nan_ids.end(), s->id) != nan_ids.end()) row[7] = NAN;
      logits.insert(logits.end(), row.begin(), row.end());
      out.row_begin.push_back(out.row_begin.back() + 1);
      s->computed = s->tokens.size();
    }
    out.logits = Tensor::from_vector(logits, {static_cast<int64_t>(seqs.size()), kVocab});
    const StepResult result = bank.sample(plan, out, kVocab);
    EXPECT_EQ(result.tokens.size(), seqs.size());
    for (size_t i = 0; i < std::min(seqs.size(), result.tokens.size()); ++i)
      if (result.tokens[i].error.empty()) seqs[i]->tokens.push_back(result.tokens[i].token);
    return result;
  }
};

// A NaN row among good rows: that sequence alone gets an error, the others draw what they draw without it, and
// the bank goes on sampling them (and the failed one's next row, were it fed one) in later steps.
TEST_F(SamplerBankDraws, ANonFiniteRowFailsAloneAndTheOthersMatchARunWithoutIt) {
  SamplingParams params;
  params.top_p = 0.9f;
  params.logprobs = 2;
  SamplingParams penalised = params;
  penalised.repetition_penalty = 1.2f;
  Seq a{1, {3, 4, 5}, 3, 0, params}, bad{2, {7, 8}, 2, 0, params}, c{3, {9}, 1, 0, penalised};
  Seq a_ref = a, c_ref = c;
  SamplerBank bank, reference;
  for (uint64_t i = 0; i < 6; ++i) {
    std::vector<Seq*> seqs = {&a, &c};
    if (i == 2) seqs.insert(seqs.begin() + 1, &bad);  // the bad sequence joins for one step, between the two
    const StepResult got = step(bank, seqs, i, {bad.id});
    const StepResult want = step(reference, {&a_ref, &c_ref}, i);
    ASSERT_EQ(got.tokens.size(), seqs.size());
    for (auto [g, w] : {std::pair{&got.tokens.front(), &want.tokens[0]},  // a and c; tokens compared below
                        std::pair{&got.tokens.back(), &want.tokens[1]}}) {
      EXPECT_EQ(g->error, "") << "step " << i;
      EXPECT_EQ(g->logprob, w->logprob) << "step " << i;
      ASSERT_EQ(g->top.size(), w->top.size());
      for (size_t k = 0; k < g->top.size(); ++k) EXPECT_EQ(g->top[k].token, w->top[k].token);
    }
    if (i == 2) {
      EXPECT_EQ(got.tokens[1].error,
                "the model produced non-finite logits at position 2 (a logit is NaN after sampling penalties)");
    }
  }
  EXPECT_EQ(a.tokens, a_ref.tokens);
  EXPECT_EQ(c.tokens, c_ref.tokens);
  EXPECT_EQ(bad.tokens, (std::vector<int32_t>{7, 8}));
  EXPECT_GT(std::set<int32_t>(a.tokens.begin() + 3, a.tokens.end()).size(), 1u);  // not a constant stream
}

TEST_F(SamplerBankDraws, SameTokensWhateverTheBatchAndAfterRecomputation) {
  SamplingParams params;
  params.top_p = 0.95f;
  SamplingParams penalised = params;
  penalised.repetition_penalty = 1.3f;
  penalised.presence_penalty = 0.4f;
  const int steps = 30;

  // Together in one batch, a first.
  Seq a{1, {3, 4, 5}, 3, 0, params}, b{2, {7, 8}, 2, 0, penalised};
  SamplerBank together;
  for (int i = 0; i < steps; ++i) step(together, {&a, &b}, static_cast<uint64_t>(i));

  // Each alone, b first and in a separate bank; a is dropped after 10 steps and recomputed by a fresh bank.
  Seq a2{1, {3, 4, 5}, 3, 0, params}, b2{2, {7, 8}, 2, 0, penalised};
  SamplerBank alone, restarted;
  for (int i = 0; i < steps; ++i) step(alone, {&b2}, static_cast<uint64_t>(i));
  for (int i = 0; i < 10; ++i) step(alone, {&a2}, static_cast<uint64_t>(i));
  a2.computed = 0;  // the fresh bank is fed the prompt and the 10 generated tokens as one prefill
  for (int i = 10; i < steps; ++i) step(restarted, {&a2}, static_cast<uint64_t>(i));

  EXPECT_EQ(a2.tokens, a.tokens);
  EXPECT_EQ(b2.tokens, b.tokens);
  // The draws are not all alike (the test would be empty if the logits made every draw greedy).
  EXPECT_GT(std::set<int32_t>(a.tokens.begin() + 3, a.tokens.end()).size(), 5u);
}

}  // namespace
}  // namespace lattice
