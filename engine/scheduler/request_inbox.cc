#include "engine/scheduler/request_inbox.h"

namespace lattice {

void RequestInbox::submit(Request request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.requests.push_back(std::move(request));
  }
  changed_.notify_all();
}

void RequestInbox::cancel(int64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.cancelled.push_back(request_id);
  }
  changed_.notify_all();
}

void RequestInbox::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.closed = true;
  }
  changed_.notify_all();
}

RequestInbox::Arrivals RequestInbox::take(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_until(lock, until, [&] {
    return !pending_.requests.empty() || !pending_.cancelled.empty() || pending_.closed;
  });
  Arrivals out = std::move(pending_);
  pending_ = {};
  pending_.closed = out.closed;
  return out;
}

}  // namespace lattice
