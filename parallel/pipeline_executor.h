// The coordinator's executor over a tp x pp grid, and the loop every other rank runs.
//
// Rank 0 (TP rank 0 of the first stage) submits a plan by broadcasting it to its TP group and running its
// own stage; the plan and hidden states then flow stage to stage, and the sampler rank (TP rank 0 of the
// last stage) sends the sampled tokens back. Up to pp plans are in flight, so that stage k works on
// micro-batch i while stage k + 1 works on micro-batch i - 1.
//
// Liveness: each worker posts "received step N" and "finished step N" to rank 0 (non-blocking, no collective);
// the executor drains them at each submit and while it waits for a result, into progress(), which a watchdog
// on another thread reads to name a rank that has stalled.
#pragma once

#include <deque>
#include <functional>

#include "engine/scheduler/executor.h"
#include "parallel/stage_runner.h"
#include "parallel/step_progress.h"

namespace lattice::parallel {

class PipelineExecutor final : public StepExecutor {
 public:
  explicit PipelineExecutor(StageRunner& runner);
  int max_in_flight() const override { return runner_.context().topo.pp; }
  void submit(const StepPlan& plan) override;
  StepResult collect() override;
  bool result_ready() override;
  // With one stage, rank 0 samples each step at submission and feeds a plan made ahead before broadcasting it, so
  // every TP rank embeds the same tokens. With several stages the tokens come back from the last stage later.
  bool feeds_pending_tokens() const override { return runner_.context().topo.pp == 1; }
  // Sends the shutdown plan that ends the worker loops of rank 0's replica.
  void shutdown();
  // Every rank's progress through the plans submitted so far (step N: the N-th submitted plan). Thread-safe.
  const StepProgress& progress() const { return progress_; }

 private:
  // Records the progress messages that have arrived (non-blocking).
  void drain_progress();
  void record(int source, const std::string& progress_message);

  StageRunner& runner_;
  std::deque<StepResult> local_;  // results sampled on this rank (pp == 1)
  StepResult last_local_;         // the latest of them, collected or not: what a plan made ahead is fed from
  StepProgress progress_;
  int64_t submitted_ = 0;
};

// Every rank but the coordinator: executes plans until the shutdown plan. `before_step` runs before each
// plan (the launcher's fault-injection hook for tests); may be empty.
void run_worker(StageRunner& runner, const std::function<void(const StepPlan&)>& before_step);

}  // namespace lattice::parallel
