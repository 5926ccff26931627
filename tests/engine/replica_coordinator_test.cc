// Data-parallel replicas without a model: the router's choice rule (engine/scheduler/replica_router.h), and the
// order in which the coordinator drives replicas (engine/scheduler/replica_coordinator.h), through executors that
// record what they are asked. (Outputs across replicas against one scheduler: scheduler_test.cc.)
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <string>

#include "engine/scheduler/replica_coordinator.h"
#include "engine/scheduler/replica_router.h"

namespace lattice {
namespace {

ReplicaLoad load(int64_t waiting, int64_t free_blocks, int64_t running = 0, int64_t cached = 0) {
  return {waiting, running, free_blocks, cached};
}

TEST(ReplicaRouter, FewestQueuedThenMostFreeBlocksThenFewestRunningThenLowestIndex) {
  EXPECT_EQ(choose_replica({load(2, 100), load(1, 10)}), 1);
  EXPECT_EQ(choose_replica({load(0, 10), load(0, 50)}), 1);
  EXPECT_EQ(choose_replica({load(0, 50, 3), load(0, 50, 2), load(0, 50, 2)}), 1);
  EXPECT_EQ(choose_replica({load(0, 50, 2), load(0, 50, 2)}), 0);
}

TEST(ReplicaRouter, ALongerCachedPrefixWinsUnlessItsQueueIsLongerByMoreThanTheSlack) {
  EXPECT_EQ(choose_replica({load(0, 90), load(4, 10, 8, 32)}, 4), 1);  // 4 more queued: still within the slack
  EXPECT_EQ(choose_replica({load(0, 90), load(5, 10, 8, 32)}, 4), 0);  // 5 more: too busy
  // The slack counts from the least loaded replica's queue, not from zero.
  EXPECT_EQ(choose_replica({load(1, 90, 0, 16), load(3, 10, 0, 32)}, 2), 1);
  EXPECT_EQ(choose_replica({load(1, 90, 0, 16), load(3, 10, 0, 32)}, 1), 0);
  // Among replicas with the same prefix, the less loaded; a prefix that the least loaded replica also has is
  // no reason to move.
  EXPECT_EQ(choose_replica({load(2, 50, 0, 32), load(1, 50, 0, 32), load(0, 50, 0, 0)}, 4), 1);
  EXPECT_EQ(choose_replica({load(1, 50, 0, 32), load(0, 50, 0, 32)}, 4), 1);
  EXPECT_EQ(choose_replica({load(0, 50)}), 0);
}

// Samples token 1 for every sequence; logs "submit R" and "collect R" into a shared log. A remote replica's
// submit returns at once, as RemoteReplicaExecutor's does; `ready` says whether its result has arrived.
class LoggingExecutor final : public StepExecutor {
 public:
  LoggingExecutor(int replica, std::vector<std::string>& log, std::function<bool()> ready = {})
      : replica_(replica), log_(log), ready_(std::move(ready)) {}
  int max_in_flight() const override { return 1; }
  void submit(const StepPlan& plan) override {
    log_.push_back("submit " + std::to_string(replica_));
    StepResult result{plan.step_id, {}, {}};
    for (const SequenceSampling& s : plan.sampling)
      if (s.sample) result.tokens.push_back({1, 0.0f, {}});
    results_.push_back(result);
  }
  StepResult collect() override {
    log_.push_back("collect " + std::to_string(replica_));
    StepResult r = results_.front();
    results_.pop_front();
    return r;
  }
  bool result_ready() override { return !ready_ || ready_(); }

 private:
  int replica_;
  std::vector<std::string>& log_;
  std::function<bool()> ready_;
  std::deque<StepResult> results_;
};

LmShape shape() {
  LmShape s;
  s.vocab_size = 16;
  s.max_positions = 64;
  return s;
}

Request request(int64_t id, int32_t max_tokens) {
  Request r;
  r.id = id;
  r.prompt = {2, 3, 4};
  r.params.temperature = 0;
  r.params.ignore_eos = true;
  r.params.max_tokens = max_tokens;
  return r;
}

// Each round posts the remote replica's plan before replica 0's executor, which on rank 0 computes during
// submit, so the replicas' steps overlap.
TEST(ReplicaCoordinator, RemoteReplicasAreSubmittedBeforeReplicaZero) {
  std::vector<std::string> log;
  LoggingExecutor zero(0, log), one(1, log);
  ReplicaCoordinator coordinator({&zero, &one}, shape(), 8, 4, {});
  EXPECT_EQ(coordinator.add(request(1, 2)), 0);
  EXPECT_EQ(coordinator.add(request(2, 2)), 1);
  const auto out = coordinator.run();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].tokens.size(), 2u);
  EXPECT_EQ(out[1].tokens.size(), 2u);
  const std::vector<std::string> want = {"submit 1", "submit 0", "collect 0", "collect 1",
                                         "submit 1", "submit 0", "collect 0", "collect 1"};
  EXPECT_EQ(log, want);
}

// A replica whose result is late holds no other back: replica 1 runs its request to the end while replica 0's
// first step is still out (replica 0's result arrives only then). Waiting on replica 0 would never return.
TEST(ReplicaCoordinator, AReplicaWhoseResultIsLateDoesNotHoldTheOthersBack) {
  std::vector<std::string> log;
  LoggingExecutor one(1, log);
  LoggingExecutor zero(0, log, [&] { return std::count(log.begin(), log.end(), "collect 1") == 3; });
  ReplicaCoordinator coordinator({&zero, &one}, shape(), 8, 4, {});
  coordinator.add(request(1, 1));
  coordinator.add(request(2, 3));
  const auto out = coordinator.run();
  ASSERT_EQ(out.size(), 2u);
  const std::vector<std::string> want = {"submit 1", "submit 0", "collect 1", "submit 1", "collect 1",
                                         "submit 1", "collect 1", "collect 0"};
  EXPECT_EQ(log, want);
}

}  // namespace
}  // namespace lattice
