// The coordinator's liveness record without MPI: the progress message codec, monotonic recording, and which
// ranks stall_report names for stalls placed in each part of a tp x pp grid.
#include <functional>

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "parallel/step_progress.h"

namespace lattice::parallel {
namespace {

TEST(StepProgress, MessagesRoundTripAndBadOnesThrow) {
  for (int64_t step : {int64_t{1}, int64_t{300}, int64_t{1} << 40, INT64_MAX}) {
    const auto [phase, got] = decode_progress(encode_progress(StepPhase::finished, step));
    EXPECT_EQ(phase, StepPhase::finished);
    EXPECT_EQ(got, step);
  }
  EXPECT_EQ(decode_progress(encode_progress(StepPhase::started, 7)).first, StepPhase::started);
  EXPECT_THROW(decode_progress("short"), Error);
  std::string bad = encode_progress(StepPhase::started, 7);
  bad[0] = 9;
  EXPECT_THROW(decode_progress(bad), Error);
}

TEST(StepProgress, RecordsOnlyForwardAndChecksTheRank) {
  StepProgress p(2);
  p.record(1, StepPhase::started, 5);
  p.record(1, StepPhase::started, 3);  // a late message about an older step
  p.record(1, StepPhase::finished, 4);
  EXPECT_EQ(p.last_started(1), 5);
  EXPECT_EQ(p.last_finished(1), 4);
  EXPECT_EQ(p.last_started(0), 0);
  EXPECT_THROW(p.record(2, StepPhase::started, 1), Error);
}

// Every rank has finished step `done`; then `apply` moves some on, and the report on step done + 1 is made.
std::vector<std::string> report(int tp, int pp, int64_t done, const std::function<void(StepProgress&)>& apply) {
  StepProgress p(tp * pp);
  for (int r = 0; r < tp * pp; ++r) {
    p.record(r, StepPhase::started, done);
    p.record(r, StepPhase::finished, done);
  }
  apply(p);
  return stall_report(p, Topology::make(tp * pp, 0, tp, pp), 0, done + 1, 5);
}

// The ranks the report names, in order.
std::vector<int> named(const std::vector<std::string>& lines) {
  std::vector<int> ranks;
  for (size_t i = 0; i + 1 < lines.size(); ++i) ranks.push_back(std::stoi(lines[i].substr(5)));
  return ranks;
}

TEST(StallReport, NamesATpPeerThatNeverReceivedThePlan) {
  // tp 2 x pp 2, rank 1 stopped: rank 0 broadcast step 42 and waits in its all-reduce; stage 1 waits for stage 0.
  const auto lines = report(2, 2, 41, [](StepProgress& p) { p.record(0, StepPhase::started, 42); });
  EXPECT_EQ(named(lines), std::vector<int>{1});
  EXPECT_EQ(lines[0],
            "rank 1 (tp 1/2, pp 0/2) has not finished step 42 after 5 s (it has not received it; rank 0 has sent it)");
  EXPECT_EQ(lines.back(), "progress by rank (last step received/finished): 0: 42/41, 1: 41/41, 2: 41/41, 3: 41/41");
}

TEST(StallReport, NamesALaterStageWhoseFeederFinished) {
  // tp 2 x pp 2, rank 3 stopped: stage 0 finished step 42 and sent it on; rank 2 waits on rank 3 in its all-reduce.
  const auto lines = report(2, 2, 41, [](StepProgress& p) {
    for (int r : {0, 1}) p.record(r, StepPhase::started, 42), p.record(r, StepPhase::finished, 42);
    p.record(2, StepPhase::started, 42);
  });
  EXPECT_EQ(named(lines), std::vector<int>{3});
  EXPECT_NE(lines[0].find("rank 1 has sent it"), std::string::npos) << lines[0];
}

TEST(StallReport, NamesTheRankFurthestBehindWhenItsFeederIsBlockedSendingToIt) {
  // pp 2, rank 1 stopped: rank 0 ran its layers for step 14 but cannot hand them to rank 1, so it never finishes.
  const auto lines = report(1, 2, 13, [](StepProgress& p) { p.record(0, StepPhase::started, 14); });
  EXPECT_EQ(named(lines), std::vector<int>{1});
  EXPECT_NE(lines[0].find("(it has not received it)"), std::string::npos) << lines[0];
}

TEST(StallReport, NamesEveryRankStuckInsideTheStep) {
  // tp 2: both ranks received step 8 and neither finished (one of them hangs inside it): both are named.
  const auto lines = report(2, 1, 7, [](StepProgress& p) {
    for (int r : {0, 1}) p.record(r, StepPhase::started, 8);
  });
  EXPECT_EQ(named(lines), (std::vector<int>{0, 1}));
  EXPECT_NE(lines[1].find("(it has received it)"), std::string::npos) << lines[1];
}

TEST(StallReport, NamesEveryRankWhenNoneHasTheStep) {
  // Rank 0 itself is stuck before the step left it (e.g. in the broadcast to a stopped TP peer).
  EXPECT_EQ(named(report(2, 2, 9, [](StepProgress&) {})), (std::vector<int>{0, 1, 2, 3}));
}

TEST(StallReport, EmptyWhenEveryRankFinished) {
  StepProgress p(2);
  for (int r : {0, 1}) p.record(r, StepPhase::finished, 3);
  EXPECT_TRUE(stall_report(p, Topology::make(2, 0, 2, 1), 0, 3, 1).empty());
  EXPECT_THROW(stall_report(p, Topology::make(4, 0, 2, 2), 0, 3, 1), Error);
}

}  // namespace
}  // namespace lattice::parallel
