// Requests arriving while the coordinator runs (from a server's threads): a thread-safe queue of new
// requests and cancellations that the scheduler drains between steps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "engine/scheduler/request.h"

namespace lattice {

class RequestInbox {
 public:
  using Clock = std::chrono::steady_clock;

  void submit(Request request);
  void cancel(int64_t request_id);
  // No more requests will come: the serving loop returns once every request has finished.
  void close();

  struct Arrivals {
    std::vector<Request> requests;
    std::vector<int64_t> cancelled;
    bool closed = false;
  };
  // Takes everything queued, first waiting until something is queued, the inbox is closed, or `until`.
  Arrivals take(Clock::time_point until);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  Arrivals pending_;
};

}  // namespace lattice
