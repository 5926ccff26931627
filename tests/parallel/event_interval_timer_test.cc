// EventIntervalTimer's bookkeeping with fake events on a fake clock: the sum of the recorded intervals, the pool
// that stops a step loop from creating events, the interval a throwing call leaves open, and every event
// destroyed. The CUDA events it runs on in the NCCL communicator are checked on a GPU (parallel_comm_tests).
#include "parallel/event_interval_timer.h"

#include <gtest/gtest.h>

#include <map>

namespace lattice::parallel {
namespace {

// Events are numbers; record() stamps the fake clock's time on one.
struct FakeClock {
  double now = 0;
  int created = 0, destroyed = 0;
  std::map<int, double> stamps;
};

struct FakeEvents {
  using Event = int;
  FakeClock* clock = nullptr;

  Event create() { return clock->created++; }
  void destroy(Event e) {
    ++clock->destroyed;
    clock->stamps.erase(e);
  }
  void record(Event e) { clock->stamps[e] = clock->now; }
  double seconds_between(Event start, Event end) { return clock->stamps.at(end) - clock->stamps.at(start); }
};

// Times the intervals [begin, begin + length) on the clock.
void time_interval(EventIntervalTimer<FakeEvents>& timer, FakeClock& clock, double begin, double length) {
  clock.now = begin;
  timer.start();
  clock.now = begin + length;
  timer.stop();
}

TEST(EventIntervalTimer, SumsTheIntervalsOnlyWhenCollected) {
  FakeClock clock;
  EventIntervalTimer<FakeEvents> timer(FakeEvents{&clock});
  time_interval(timer, clock, 1.0, 0.5);
  time_interval(timer, clock, 2.0, 0.25);
  EXPECT_EQ(timer.pending(), 2u);
  EXPECT_EQ(timer.seconds(), 0.0);  // nothing read before the stream has passed the events
  EXPECT_DOUBLE_EQ(timer.collect(), 0.75);
  EXPECT_EQ(timer.pending(), 0u);
  EXPECT_EQ(timer.collect(), 0.0);  // nothing new
  time_interval(timer, clock, 3.0, 0.125);
  EXPECT_DOUBLE_EQ(timer.collect(), 0.125);
  EXPECT_DOUBLE_EQ(timer.seconds(), 0.875);
}

TEST(EventIntervalTimer, ASteadyLoopReusesItsEvents) {
  FakeClock clock;
  EventIntervalTimer<FakeEvents> timer(FakeEvents{&clock});
  for (int step = 0; step < 5; ++step) {
    for (int op = 0; op < 3; ++op) time_interval(timer, clock, step * 10.0 + op, 0.5);
    timer.collect();
  }
  EXPECT_EQ(clock.created, 6);  // three pairs, made in the first step
  EXPECT_EQ(timer.pooled(), 6u);
  EXPECT_DOUBLE_EQ(timer.seconds(), 5 * 3 * 0.5);
}

TEST(EventIntervalTimer, DropsTheIntervalOfACallThatThrew) {
  FakeClock clock;
  EventIntervalTimer<FakeEvents> timer(FakeEvents{&clock});
  clock.now = 1.0;
  timer.start();  // the timed call throws: no stop()
  time_interval(timer, clock, 5.0, 0.5);
  EXPECT_DOUBLE_EQ(timer.collect(), 0.5);  // from 5.0, not from the abandoned 1.0
  EXPECT_EQ(clock.created, 2);             // the open event was reused
}

TEST(EventIntervalTimer, StopWithoutStartIsAnError) {
  FakeClock clock;
  EventIntervalTimer<FakeEvents> timer(FakeEvents{&clock});
  EXPECT_THROW(timer.stop(), Error);
}

TEST(EventIntervalTimer, DestroysEveryEventItMade) {
  FakeClock clock;
  {
    EventIntervalTimer<FakeEvents> timer(FakeEvents{&clock});
    time_interval(timer, clock, 0.0, 1.0);
    timer.collect();                        // a pooled pair
    time_interval(timer, clock, 2.0, 1.0);  // a pending pair (reusing it)
    time_interval(timer, clock, 4.0, 1.0);  // and another
    clock.now = 6.0;
    timer.start();  // an open one
  }
  EXPECT_EQ(clock.created, 5);
  EXPECT_EQ(clock.destroyed, clock.created);
}

}  // namespace
}  // namespace lattice::parallel
