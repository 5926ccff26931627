// The serve step watchdog on a fake clock-free executor: it fires once, on the oldest step, after its timeout
// (the first steps get the longer one), never while steps keep finishing, and not at all when disabled.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "launcher/serve/step_watchdog.h"

namespace lattice::serve {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Fired {
  std::mutex mutex;
  std::vector<std::string> report;
  std::atomic<int> times{0};
  Clock::time_point at;
};

StepWatchdog::OnStall record(Fired& f) {
  return [&f](const std::vector<std::string>& report) {
    std::lock_guard<std::mutex> lock(f.mutex);
    f.report = report;
    f.at = Clock::now();
    ++f.times;
  };
}

double seconds_since(Clock::time_point t, Clock::time_point now) {
  return std::chrono::duration<double>(now - t).count();
}

// Waits (2 s at most) until the watchdog has fired.
bool wait_fired(const Fired& f) {
  for (int i = 0; i < 200 && f.times == 0; ++i) std::this_thread::sleep_for(10ms);
  return f.times > 0;
}

TEST(StepWatchdog, FiresOnceOnTheOldestStepAfterItsTimeout) {
  Fired f;
  StepWatchdog dog({0.2, 0.2}, [](int64_t step, double seconds) {
    return std::vector<std::string>{"step " + std::to_string(step) + " late by " + std::to_string(seconds >= 0.2)};
  }, record(f), 10ms);
  dog.submitted();
  dog.collected();  // step 1 done
  dog.submitted();  // step 2: stalls
  const Clock::time_point start = Clock::now();
  dog.submitted();  // step 3, queued behind it
  ASSERT_TRUE(wait_fired(f));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(f.times, 1);
  EXPECT_EQ(f.report, std::vector<std::string>{"step 2 late by 1"});
  // Fired after the 0.2 s timeout, and within the 10 ms poll plus scheduling slack on a loaded 2-core machine.
  const double after = seconds_since(start, f.at);
  EXPECT_GE(after, 0.2);
  EXPECT_LT(after, 1.0);
  EXPECT_TRUE(dog.fired());
}

TEST(StepWatchdog, StepsThatKeepFinishingNeverFire) {
  Fired f;
  StepWatchdog dog({0.4, 0.4}, {}, record(f), 10ms);
  // A pipeline keeping 6 steps in flight, one finishing every 100 ms for 1.2 s: each step waits 0.6 s from its
  // submission to its result, but its clock restarts when the one ahead of it is collected, so none waits
  // 0.4 s (the sleeps may overrun by 0.3 s on a loaded machine before this fails).
  for (int i = 0; i < 6; ++i) dog.submitted();
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(100ms);
    dog.collected();
    if (i < 6) dog.submitted();
  }
  std::this_thread::sleep_for(500ms);  // idle: nothing in flight
  EXPECT_EQ(f.times, 0);
}

TEST(StepWatchdog, FirstStepsGetTheirOwnTimeoutAndAPlainReport) {
  Fired f;
  StepWatchdog dog({0.1, 0.5}, {}, record(f), 10ms);
  dog.submitted();  // step 1: warm-up allowance
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(f.times, 0) << "the first step has 0.5 s";
  ASSERT_TRUE(wait_fired(f));
  ASSERT_EQ(f.report.size(), 1u);
  const std::string prefix = "step 1 has not finished after ";
  ASSERT_EQ(f.report[0].rfind(prefix, 0), 0u) << f.report[0];
  EXPECT_GE(std::stod(f.report[0].substr(prefix.size())), 0.5) << f.report[0];
}

TEST(StepWatchdog, ZeroDisablesIt) {
  Fired f;
  {
    StepWatchdog dog({0, 0}, {}, record(f), 5ms);
    dog.submitted();
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(f.times, 0);
}

}  // namespace
}  // namespace lattice::serve
