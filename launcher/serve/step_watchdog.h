// The serve loop's step watchdog (rank 0): a thread that notices when the oldest step in flight has made no
// progress for longer than its timeout (a stopped, hung or dead rank, or a stuck device) and reports it once.
//
// The executor tells it when each step is submitted and collected (a mutex and a clock read per step; no
// communication). A step's clock starts when it was submitted or when the step before it was collected,
// whichever is later, so a pipeline's queued steps are not charged for the ones ahead of them. Steps
// submitted before the first one completes (model warm-up, first allocations) get `first_step_seconds`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lattice::serve {

struct StepTimeouts {
  double step_seconds = 60;         // 0: no watchdog
  double first_step_seconds = 600;  // 0: no limit on the first steps
};

class StepWatchdog {
 public:
  // Lines that name what has not finished `step` after `seconds` (e.g. parallel::stall_report); may be empty.
  using Describe = std::function<std::vector<std::string>(int64_t step, double seconds)>;
  // Called once, on the watchdog's thread, with the report (at least one line). It may end the process.
  using OnStall = std::function<void(const std::vector<std::string>& report)>;

  StepWatchdog(StepTimeouts timeouts, Describe describe, OnStall on_stall,
               std::chrono::milliseconds poll = std::chrono::milliseconds(100));
  ~StepWatchdog();  // stops the thread
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;

  // The serve thread: step numbers count submissions from 1, as the workers count plans.
  void submitted();
  void collected();
  bool fired() const { return fired_; }

 private:
  using Clock = std::chrono::steady_clock;
  void run(std::chrono::milliseconds poll);

  const StepTimeouts timeouts_;
  Describe describe_;
  OnStall on_stall_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> fired_{false};
  int64_t collected_ = 0;
  Clock::time_point last_collect_;
  std::deque<std::pair<Clock::time_point, bool>> in_flight_;  // submit time, first-step allowance
  std::thread thread_;
};

}  // namespace lattice::serve
