#include "launcher/serve/step_watchdog.h"

#include <algorithm>
#include <cstdio>

namespace lattice::serve {

StepWatchdog::StepWatchdog(StepTimeouts timeouts, Describe describe, OnStall on_stall, std::chrono::milliseconds poll)
    : timeouts_(timeouts), describe_(std::move(describe)), on_stall_(std::move(on_stall)) {
  if (timeouts_.step_seconds > 0) thread_ = std::thread([this, poll] { run(poll); });
}

StepWatchdog::~StepWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StepWatchdog::submitted() {
  std::lock_guard<std::mutex> lock(mutex_);
  in_flight_.emplace_back(Clock::now(), collected_ == 0);
}

void StepWatchdog::collected() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in_flight_.empty()) return;
  in_flight_.pop_front();
  ++collected_;
  last_collect_ = Clock::now();
}

void StepWatchdog::run(std::chrono::milliseconds poll) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, poll);
    if (stopping_ || in_flight_.empty()) continue;
    const auto [submitted, first] = in_flight_.front();
    const double limit = first ? timeouts_.first_step_seconds : timeouts_.step_seconds;
    const double waited = std::chrono::duration<double>(Clock::now() - std::max(submitted, last_collect_)).count();
    if (limit <= 0 || waited <= limit) continue;
    const int64_t step = collected_ + 1;
    lock.unlock();
    fired_ = true;
    std::vector<std::string> report = describe_ ? describe_(step, waited) : std::vector<std::string>{};
    if (report.empty()) {
      char line[128];
      std::snprintf(line, sizeof line, "step %lld has not finished after %.3g s", static_cast<long long>(step), waited);
      report.push_back(line);
    }
    on_stall_(report);
    return;
  }
}

}  // namespace lattice::serve
