// The executors over a loaded engine, on one rank or dp replicas of a tp x pp grid (the structure of lattice
// generate): every rank but the coordinator runs the worker loop; the coordinator drives one executor per
// replica (a LocalExecutor on one rank; parallel/replica_executors.h on a grid) and shuts the workers down
// when done.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "engine/scheduler/executor.h"
#include "launcher/engine_setup.h"
#include "launcher/serve/step_watchdog.h"
#include "parallel/replica_executors.h"

namespace lattice::launcher {

class EngineGrid {
 public:
  explicit EngineGrid(LoadedEngine& engine);
  bool is_coordinator() const { return engine_.ctx.topo.is_coordinator(); }
  // Workers: runs plans until the coordinator's shutdown.
  void run_worker();
  // Coordinator only: [r] drives replica r.
  std::vector<StepExecutor*> executors();
  void shutdown_workers();
  // The lines naming the ranks that have not finished `step` after `seconds` (parallel::stall_report), as the
  // coordinator's executor last heard; empty in one process. Any thread.
  std::vector<std::string> stall_report(int replica, int64_t step, double seconds) const;

 private:
  LoadedEngine& engine_;
  std::unique_ptr<parallel::StageRunner> runner_;
  std::unique_ptr<LocalExecutor> local_;                 // one rank
  std::unique_ptr<parallel::ReplicaExecutors> replicas_;  // a grid
};

// Wraps an executor to time each step (submit to collect) and record its batch size; calls `after_step`
// on the coordinator thread after each result, and tells `watchdog` (if any) of each submission and result.
// `step_delay` (tests only) slows each step down.
class MeteredExecutor final : public StepExecutor {
 public:
  // seconds: submit to result on rank 0; result.stage_times: each pipeline stage's own part (grids only).
  using StepFn = std::function<void(size_t batch_size, double seconds, const StepResult& result)>;
  MeteredExecutor(StepExecutor& inner, StepFn after_step, std::chrono::milliseconds step_delay,
                  serve::StepWatchdog* watchdog = nullptr)
      : inner_(inner), after_step_(std::move(after_step)), step_delay_(step_delay), watchdog_(watchdog) {}
  int max_in_flight() const override { return inner_.max_in_flight(); }
  void submit(const StepPlan& plan) override;
  StepResult collect() override;
  bool result_ready() override { return inner_.result_ready(); }
  bool feeds_pending_tokens() const override { return inner_.feeds_pending_tokens(); }

 private:
  StepExecutor& inner_;
  StepFn after_step_;
  std::chrono::milliseconds step_delay_;
  serve::StepWatchdog* watchdog_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, size_t>> submitted_;
};

}  // namespace lattice::launcher
