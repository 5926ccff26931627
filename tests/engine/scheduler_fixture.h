// The scheduler tests' fixture (scheduler_test.cc, async_scheduling_test.cc): the tiny-llama model, runs of
// requests through a scheduler and a LocalExecutor with a KV cache of a given size, the request sets, and the
// comparison of two runs' outputs.
#pragma once

#include <gtest/gtest.h>

#include <random>

#include "engine/scheduler/scheduler.h"
#include "models/llama.h"
#include "tests/test_utils.h"

namespace lattice {

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = LlamaModel::load(testing::data_dir() + "/tiny-llama/f32").release(); }
  static void TearDownTestSuite() { delete model_; }

  std::vector<RequestOutput> run(const std::vector<Request>& requests, int32_t blocks, SchedulerOptions options = {},
                                 SchedulerStats* stats = nullptr, int64_t* evictions = nullptr) {
    KvCache cache(model_->lm_shape().kv, blocks);
    Scheduler scheduler(model_->lm_shape(), blocks, 16, options);
    for (const Request& r : requests) scheduler.add(r);
    LocalExecutor executor(*model_, cache);
    auto out = scheduler.run(executor);
    if (stats) *stats = scheduler.stats();
    if (evictions) *evictions = scheduler.blocks().evictions();
    expect_all_returned(scheduler.blocks());
    return out;
  }

  static void expect_all_returned(const BlockManager& blocks) {
    EXPECT_EQ(blocks.num_free(), blocks.num_blocks()) << "every block returns when requests finish";
    for (int32_t b = 0; b < blocks.num_blocks(); ++b) EXPECT_EQ(blocks.users(b), 0) << "block " << b;
  }

  // Mixed prompt lengths and sampling settings with fixed seeds.
  static std::vector<Request> mixed_requests() {
    std::vector<Request> rs;
    std::mt19937 rng(5);
    for (int i = 0; i < 8; ++i) {
      Request r;
      r.id = i;
      const int len = 1 + (i * 37) % 70;
      for (int j = 0; j < len; ++j) r.prompt.push_back(static_cast<int32_t>(rng() % 512));
      r.params.max_tokens = 6 + i % 5;
      r.params.temperature = i % 3 == 0 ? 0.0f : 0.9f;
      r.params.top_k = i % 2 ? 40 : 0;
      r.params.top_p = i % 4 == 1 ? 0.8f : 1.0f;
      r.params.seed = 100 + i;
      r.params.logprobs = 2;
      rs.push_back(r);
    }
    return rs;
  }

  // 32 requests over four shared "system prompts": each takes a random-length prefix of one (a few take none)
  // and adds its own random tail; greedy and seeded sampling, with penalties that read the whole context.
  static std::vector<Request> shared_prefix_requests() {
    std::mt19937 rng(11);
    std::vector<std::vector<int32_t>> systems(4);
    for (auto& s : systems)
      for (int j = 0; j < 40 + static_cast<int>(rng() % 100); ++j) s.push_back(static_cast<int32_t>(rng() % 512));
    std::vector<Request> rs;
    for (int i = 0; i < 32; ++i) {
      Request r;
      r.id = 100 + i;
      const auto& system = systems[i % 4];
      const size_t keep = i % 8 == 7 ? 0 : system.size() - rng() % std::min<size_t>(system.size(), 40);
      r.prompt.assign(system.begin(), system.begin() + static_cast<std::ptrdiff_t>(keep));
      for (int j = 0, tail = 1 + static_cast<int>(rng() % 30); j < tail; ++j)
        r.prompt.push_back(static_cast<int32_t>(rng() % 512));
      r.params.max_tokens = 4 + static_cast<int64_t>(rng() % 12);
      r.params.temperature = i % 2 ? 0.0f : 0.8f;
      r.params.seed = 7 * i;
      if (i % 3 == 1) r.params.repetition_penalty = 1.3f;
      if (i % 5 == 2) r.params.presence_penalty = 0.5f;
      r.params.logprobs = 2;
      rs.push_back(r);
    }
    return rs;
  }

  static SchedulerOptions caching(SchedulerOptions o = {}) {
    o.prefix_caching.enabled = true;
    return o;
  }

  // Tokens exactly; log-probabilities within logprob_tol (absolute: a logit's rounding error scales with the
  // logits' size, not with the log-probability's).
  static void expect_same(const std::vector<RequestOutput>& a, const std::vector<RequestOutput>& b,
                          double logprob_tol = 1e-4) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].tokens.size(), b[i].tokens.size()) << "request " << a[i].id;
      for (size_t j = 0; j < a[i].tokens.size(); ++j) {
        EXPECT_EQ(a[i].tokens[j].token, b[i].tokens[j].token) << "request " << a[i].id << " token " << j;
        EXPECT_NEAR(a[i].tokens[j].logprob, b[i].tokens[j].logprob, logprob_tol);
        ASSERT_EQ(a[i].tokens[j].top.size(), b[i].tokens[j].top.size());
        for (size_t k = 0; k < a[i].tokens[j].top.size(); ++k)
          EXPECT_NEAR(a[i].tokens[j].top[k].logprob, b[i].tokens[j].top[k].logprob, logprob_tol);
      }
      EXPECT_EQ(a[i].finish, b[i].finish);
    }
  }

  inline static LlamaModel* model_ = nullptr;
};

}  // namespace lattice
