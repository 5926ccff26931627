#include "parallel/stage_runner.h"

#include <chrono>

#include "parallel/plan_codec.h"

namespace lattice::parallel {

StageRunner::StageRunner(ParallelContext& ctx, ModelRunner& runner)
    : ctx_(ctx), runner_(runner), sampler_(runner.gpu()) {}

std::string StageRunner::receive_plan() {
  const Topology& t = ctx_.topo;
  if (t.is_first_stage()) {
    // Rank 0 makes replica 0's plans itself; another replica's leader receives them from rank 0 first.
    std::string bytes;
    if (t.is_replica_leader()) bytes = ctx_.control->recv(0, kPlanTag);
    ctx_.control->broadcast_tp(bytes, 0);
    return bytes;
  }
  return ctx_.control->recv(t.world_rank(t.pp_rank - 1, t.tp_rank), kPlanTag);
}

void StageRunner::forward_shutdown(const std::string& wire) {
  const Topology& t = ctx_.topo;
  if (!t.is_last_stage()) ctx_.control->send(wire, t.world_rank(t.pp_rank + 1, t.tp_rank), kPlanTag);
}

std::optional<StepOutput> StageRunner::forward(const StepPlan& plan, const std::string& wire, double* seconds) {
  const Topology& t = ctx_.topo;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (t.is_first_stage() && t.is_last_stage()) {  // the whole model (TP shards): a decode graph may replay it
    std::optional<StepOutput> out = runner_.run(plan.batch);
    ctx_.synchronize();
    if (seconds) *seconds = elapsed();
    return out;
  }
  Tensor& hidden = runner_.begin(plan.batch);
  if (t.is_first_stage())
    runner_.embed();
  else
    ctx_.prev->recv(hidden, 0);
  runner_.run_layers();
  if (!t.is_last_stage()) {
    // The per-step watchdog (a failed or stalled peer becomes an error, not a hang); it also makes the stage's
    // time on a GPU the time its kernels took. The plan goes first: the next stage receives it before the states.
    ctx_.synchronize();
    const double own = elapsed();
    ctx_.control->send(wire + encode_stage_time({t.rank, own}), t.world_rank(t.pp_rank + 1, t.tp_rank), kPlanTag);
    ctx_.next->send(hidden, 1);
    if (seconds) *seconds = own;
    return std::nullopt;
  }
  std::optional<StepOutput> out = runner_.head();
  ctx_.synchronize();
  if (seconds) *seconds = elapsed();
  return out;
}

std::optional<StepResult> StageRunner::run(const StepPlan& plan, const std::string& wire, std::vector<StageTime> upstream) {
  double own = 0;
  std::optional<StepOutput> out = forward(plan, wire, &own);
  if (!out || ctx_.topo.rank != ctx_.topo.sampler_rank()) return std::nullopt;
  StepResult result = sampler_.sample(plan, *out, runner_.model().lm_shape().vocab_size);
  result.stage_times = std::move(upstream);
  result.stage_times.push_back({ctx_.topo.rank, own});
  return result;
}

}  // namespace lattice::parallel
