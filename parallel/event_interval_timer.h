// Device time of the operations a communicator enqueues on a stream: a pair of events is recorded around each
// one, and the pairs are read (and summed) once the stream has run past them. A host clock would time only the
// enqueue, since NCCL returns before the data has moved. Events are pooled: a pair goes back to the pool when it
// is read, so a steady step loop creates no event after its first step.
//
// The event API is a parameter so that this bookkeeping is tested on the CPU with a fake clock
// (tests/parallel/event_interval_timer_test.cc); the CUDA one (cudaEvent_t on the compute stream) is in
// nccl_communicator.cc. `Events` provides:
//   using Event = ...;                 a copyable handle
//   Event create();  void destroy(Event);
//   void record(Event);                marks the stream's position
//   double seconds_between(Event start, Event end);   both recorded and passed by the stream
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "engine/core/error.h"

namespace lattice::parallel {

template <class Events>
class EventIntervalTimer {
 public:
  using Event = typename Events::Event;

  explicit EventIntervalTimer(Events events = {}) : events_(std::move(events)) {}
  ~EventIntervalTimer() {
    if (open_) events_.destroy(*open_);
    for (const auto& [start, end] : pending_) {
      events_.destroy(start);
      events_.destroy(end);
    }
    for (const Event e : pool_) events_.destroy(e);
  }
  EventIntervalTimer(const EventIntervalTimer&) = delete;
  EventIntervalTimer& operator=(const EventIntervalTimer&) = delete;

  // Marks the start of an interval. An interval still open (the call it timed threw before stop()) is dropped.
  void start() {
    if (!open_) open_ = take();
    events_.record(*open_);
  }
  // Marks the end of the interval start() opened.
  void stop() {
    LATTICE_CHECK(open_.has_value(), "EventIntervalTimer::stop without start");
    const Event end = take();
    events_.record(end);
    pending_.emplace_back(*open_, end);
    open_.reset();
  }
  // Adds up the intervals recorded since the last collect(); only once the stream has run past them (after a
  // wait for it). Returns the seconds added.
  double collect() {
    double added = 0;
    for (const auto& [start, end] : pending_) {
      added += events_.seconds_between(start, end);
      pool_.push_back(start);
      pool_.push_back(end);
    }
    pending_.clear();
    seconds_ += added;
    return added;
  }

  double seconds() const { return seconds_; }   // every collected interval
  size_t pending() const { return pending_.size(); }  // intervals recorded and not yet collected
  size_t pooled() const { return pool_.size(); }      // events free for reuse

 private:
  Event take() {
    if (pool_.empty()) return events_.create();
    const Event e = pool_.back();
    pool_.pop_back();
    return e;
  }

  Events events_;
  std::vector<Event> pool_;
  std::vector<std::pair<Event, Event>> pending_;
  std::optional<Event> open_;
  double seconds_ = 0;
};

}  // namespace lattice::parallel
