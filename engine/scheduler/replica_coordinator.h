// Rank 0's coordinator over data-parallel replicas (one replica in one process or a single tp x pp grid):
// one Scheduler per replica, each over its replica's KV cache and driving its replica's StepExecutor, and a
// router (replica_router.h) that gives every new request to one of them for its whole life. Requests, their
// cancellations and their events all pass through here, so a server sees one engine.
//
// A step round: every scheduler submits what it can, the remote replicas first (their executors only post
// the plans) and replica 0 last (whose executor computes rank 0's own stage of the step during submit), so
// that all replicas compute at once; then the coordinator takes the results that have arrived, whichever
// replica they come from, waiting (polling the replicas in turn) only while none has. A replica that is
// fast is therefore never held to the pace of a slow one.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/scheduler/replica_router.h"
#include "engine/scheduler/scheduler.h"

namespace lattice {

class ReplicaCoordinator {
 public:
  using EventFn = Scheduler::EventFn;
  using RejectFn = std::function<void(int64_t, const std::string&)>;

  // Replica r runs executors[r]; every replica's KV cache has num_blocks blocks of block_size tokens.
  ReplicaCoordinator(std::vector<StepExecutor*> executors, const LmShape& shape, int32_t num_blocks,
                     int32_t block_size, const SchedulerOptions& options, int64_t prefix_slack = kDefaultPrefixSlack);

  // Routes and queues a request; returns its replica. Throws (naming the problem) as Scheduler::add does.
  int add(Request request);
  // As Scheduler::cancel, on the request's replica; unknown or finished ids are ignored.
  void cancel(int64_t request_id);
  bool has_work() const;

  // As Scheduler::run, over every replica; outputs in the order requests were added.
  std::vector<RequestOutput> run(const EventFn& on_event = {});
  // Serves requests as they arrive in `inbox` until it is closed and everything has finished. When the
  // engine is idle and a request arrives, waits up to `max_wait` for more before the first step (the
  // dynamic batching window), unless every replica's batch would be full. Invalid requests go to on_reject.
  void serve(RequestInbox& inbox, std::chrono::milliseconds max_wait, const EventFn& on_event,
             const RejectFn& on_reject);

  int size() const { return static_cast<int>(replicas_.size()); }
  // Read on the thread that drives the coordinator (a server's metrics).
  const Scheduler& scheduler(int replica) const { return *replicas_.at(replica).scheduler; }
  int64_t routed(int replica) const { return replicas_.at(replica).routed; }  // requests given to it so far
  SchedulerStats stats() const;  // summed over the replicas

 private:
  struct Replica {
    std::unique_ptr<Scheduler> scheduler;
    StepExecutor* executor;
    int64_t routed = 0;
  };
  // One step round (see the header comment); false when nothing was in flight and nothing could be scheduled.
  bool pump(const EventFn& on_event);
  void accept(RequestInbox::Arrivals& arrivals, const RejectFn& on_reject);
  void forget_finished();

  std::vector<Replica> replicas_;
  const int64_t max_seqs_;
  const int64_t prefix_slack_;
  std::map<int64_t, int> owner_;  // unfinished request id -> replica
  std::vector<int64_t> order_;    // request ids as added (run() only)
};

}  // namespace lattice
