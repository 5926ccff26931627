// Rank 0's executors over dp replicas of a tp x pp grid, one per replica: replica 0 through the
// PipelineExecutor of the stage rank 0 computes in, every other replica through a RemoteReplicaExecutor.
//
// A remote replica gets its plans point to point: rank 0 posts each plan (non-blocking) to the replica's
// leader (TP rank 0 of its first stage), which broadcasts it in its TP group and runs the pipeline as rank 0
// does in replica 0; the replica's sampler rank posts the tokens back to rank 0. Posting first and computing
// after is what keeps the replicas concurrent: rank 0 posts the other replicas' plans, then runs its own
// stage of replica 0 (see engine/scheduler/replica_coordinator.h for the order).
#pragma once

#include <memory>
#include <vector>

#include "parallel/pipeline_executor.h"

namespace lattice::parallel {

class RemoteReplicaExecutor final : public StepExecutor {
 public:
  RemoteReplicaExecutor(ParallelContext& ctx, int replica);
  int max_in_flight() const override { return ctx_.topo.pp; }
  void submit(const StepPlan& plan) override;  // returns at once; the channel keeps the bytes until delivery
  StepResult collect() override;
  bool result_ready() override;
  // Sends the shutdown plan that ends the replica's worker loops.
  void shutdown();

 private:
  ParallelContext& ctx_;
  const int replica_;
};

class ReplicaExecutors {
 public:
  // On rank 0 of a job of more than one rank.
  explicit ReplicaExecutors(StageRunner& runner);
  // [r] drives replica r.
  std::vector<StepExecutor*> executors();
  // Ends every worker loop of every replica; once.
  void shutdown();
  // Every rank's progress (all replicas': their workers all report to rank 0), as replica 0's executor drains it
  // when it submits and collects. Thread-safe.
  const StepProgress& progress() const { return local_.progress(); }

 private:
  PipelineExecutor local_;
  std::vector<std::unique_ptr<RemoteReplicaExecutor>> remote_;
  bool shut_down_ = false;
};

}  // namespace lattice::parallel
