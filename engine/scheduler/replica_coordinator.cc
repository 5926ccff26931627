#include "engine/scheduler/replica_coordinator.h"

#include <algorithm>
#include <thread>

#include "engine/core/error.h"

namespace lattice {

ReplicaCoordinator::ReplicaCoordinator(std::vector<StepExecutor*> executors, const LmShape& shape, int32_t num_blocks,
                                       int32_t block_size, const SchedulerOptions& options, int64_t prefix_slack)
    : max_seqs_(options.max_seqs), prefix_slack_(prefix_slack) {
  LATTICE_CHECK(!executors.empty(), "a coordinator needs at least one replica");
  for (StepExecutor* e : executors)
    replicas_.push_back({std::make_unique<Scheduler>(shape, num_blocks, block_size, options), e});
}

int ReplicaCoordinator::add(Request request) {
  LATTICE_CHECK(owner_.count(request.id) == 0, "request id ", request.id, " is already in use");
  int chosen = 0;
  if (size() > 1) {
    std::vector<ReplicaLoad> loads;
    for (const Replica& r : replicas_) {
      const Scheduler& s = *r.scheduler;
      const int64_t n = static_cast<int64_t>(request.prompt.size());  // the last token always runs: n - 1 at most
      const int64_t cached = n == 0 ? 0 : s.blocks().cached_prefix(request.prompt, n - 1);
      loads.push_back({s.num_waiting(), s.num_running(), s.blocks().num_free(), cached});
    }
    chosen = choose_replica(loads, prefix_slack_);
  }
  const int64_t id = request.id;
  replicas_[chosen].scheduler->add(std::move(request));
  ++replicas_[chosen].routed;
  owner_[id] = chosen;
  order_.push_back(id);
  return chosen;
}

void ReplicaCoordinator::cancel(int64_t request_id) {
  auto it = owner_.find(request_id);
  if (it != owner_.end()) replicas_[it->second].scheduler->cancel(request_id);
}

bool ReplicaCoordinator::has_work() const {
  return std::any_of(replicas_.begin(), replicas_.end(),
                     [](const Replica& r) { return r.scheduler->has_work() || r.scheduler->in_flight(); });
}

SchedulerStats ReplicaCoordinator::stats() const {
  SchedulerStats sum;
  for (const Replica& r : replicas_) {
    const SchedulerStats& s = r.scheduler->stats();
    sum.steps += s.steps;
    sum.prompt_tokens += s.prompt_tokens;
    sum.generated_tokens += s.generated_tokens;
    sum.preemptions += s.preemptions;
    sum.prefix_cache_queries += s.prefix_cache_queries;
    sum.prefix_cache_hits += s.prefix_cache_hits;
    sum.ahead_steps += s.ahead_steps;
    sum.discarded_rows += s.discarded_rows;
  }
  return sum;
}

bool ReplicaCoordinator::pump(const EventFn& on_event) {
  const EventFn report = [&](const TokenEvent& e) {
    if (e.finish != FinishReason::none) owner_.erase(e.request_id);
    if (on_event) on_event(e);
  };
  for (auto r = replicas_.rbegin(); r != replicas_.rend(); ++r) r->scheduler->submit_ready(*r->executor, report);
  std::vector<Replica*> busy;
  for (Replica& r : replicas_)
    if (r.scheduler->in_flight()) busy.push_back(&r);
  if (busy.empty()) return false;
  if (busy.size() == 1) {  // nothing to choose between: wait for it
    busy[0]->scheduler->collect(*busy[0]->executor, report);
    return true;
  }
  while (true) {
    bool collected = false;
    for (Replica* r : busy)
      if (r->executor->result_ready()) {
        r->scheduler->collect(*r->executor, report);
        collected = true;
      }
    if (collected) return true;
    std::this_thread::yield();
  }
}

void ReplicaCoordinator::forget_finished() {
  for (Replica& r : replicas_) r.scheduler->take_finished();
  order_.clear();
}

std::vector<RequestOutput> ReplicaCoordinator::run(const EventFn& on_event) {
  while (has_work())
    LATTICE_CHECK(pump(on_event) || !has_work(), "scheduler stalled with work on ", size(), " replicas");
  std::map<int64_t, RequestOutput> by_id;
  for (Replica& r : replicas_)
    for (RequestOutput& out : r.scheduler->take_finished()) by_id.emplace(out.id, std::move(out));
  std::vector<RequestOutput> outputs;
  for (int64_t id : order_)
    if (auto it = by_id.find(id); it != by_id.end()) outputs.push_back(std::move(it->second));
  order_.clear();
  return outputs;
}

void ReplicaCoordinator::accept(RequestInbox::Arrivals& arrivals, const RejectFn& on_reject) {
  for (Request& r : arrivals.requests) {
    const int64_t id = r.id;
    try {
      add(std::move(r));
    } catch (const Error& e) {
      if (on_reject) on_reject(id, e.what());
    }
  }
  for (int64_t id : arrivals.cancelled) cancel(id);
  arrivals.requests.clear();
  arrivals.cancelled.clear();
}

void ReplicaCoordinator::serve(RequestInbox& inbox, std::chrono::milliseconds max_wait, const EventFn& on_event,
                               const RejectFn& on_reject) {
  using Clock = RequestInbox::Clock;
  auto none_running = [&] {
    return std::all_of(replicas_.begin(), replicas_.end(),
                       [](const Replica& r) { return r.scheduler->num_running() == 0; });
  };
  auto waiting = [&] {
    int64_t n = 0;
    for (const Replica& r : replicas_) n += r.scheduler->num_waiting();
    return n;
  };
  bool closed = false;
  while (true) {
    const bool idle = !has_work();
    if (closed && idle) break;
    // Block only while idle; otherwise just collect what has arrived since the last step.
    RequestInbox::Arrivals arrivals = inbox.take(idle ? Clock::time_point::max() : Clock::now());
    closed = closed || arrivals.closed;
    accept(arrivals, on_reject);
    // The batching window: starting from an idle engine, give later arrivals up to max_wait to join the
    // first step, unless the batches are already full. Running decodes are never held back.
    while (none_running() && waiting() > 0 && !closed && waiting() < max_seqs_ * size()) {
      Clock::time_point oldest = Clock::time_point::max();
      for (const Replica& r : replicas_)
        if (auto t = r.scheduler->oldest_arrival()) oldest = std::min(oldest, *t);
      const Clock::time_point window_end = oldest + max_wait;
      if (Clock::now() >= window_end) break;
      arrivals = inbox.take(window_end);
      closed = closed || arrivals.closed;
      accept(arrivals, on_reject);
    }
    LATTICE_CHECK(pump(on_event) || !has_work(), "scheduler stalled with work on ", size(), " replicas");
    forget_finished();  // events have reported every finished request; a server keeps no outputs
  }
}

}  // namespace lattice
