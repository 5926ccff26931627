#include "launcher/serve/engine_grid.h"

#include <thread>

namespace lattice::launcher {

EngineGrid::EngineGrid(LoadedEngine& engine) : engine_(engine) {
  if (engine.ctx.topo.world_size > 1)
    runner_ = std::make_unique<parallel::StageRunner>(engine.ctx, *engine.runner);
  if (!is_coordinator()) return;
  if (runner_)
    replicas_ = std::make_unique<parallel::ReplicaExecutors>(*runner_);
  else
    local_ = std::make_unique<LocalExecutor>(*engine.runner);
}

void EngineGrid::run_worker() { parallel::run_worker(*runner_, {}); }

std::vector<StepExecutor*> EngineGrid::executors() {
  if (local_) return {local_.get()};
  return replicas_->executors();
}

void EngineGrid::shutdown_workers() {
  if (replicas_) replicas_->shutdown();
}

std::vector<std::string> EngineGrid::stall_report(int replica, int64_t step, double seconds) const {
  if (!replicas_) return {};
  return parallel::stall_report(replicas_->progress(), engine_.ctx.topo, replica, step, seconds);
}

void MeteredExecutor::submit(const StepPlan& plan) {
  if (step_delay_.count() > 0) std::this_thread::sleep_for(step_delay_);
  submitted_.emplace_back(std::chrono::steady_clock::now(), plan.batch.seqs.size());
  if (watchdog_) watchdog_->submitted();
  inner_.submit(plan);
}

StepResult MeteredExecutor::collect() {
  StepResult result = inner_.collect();
  if (watchdog_) watchdog_->collected();
  const auto [start, batch] = submitted_.front();
  submitted_.pop_front();
  if (after_step_)
    after_step_(batch, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), result);
  return result;
}

}  // namespace lattice::launcher
