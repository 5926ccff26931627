#include "parallel/stage_runner.h"

namespace lattice::parallel {

std::string StageRunner::receive_plan() {
  const Topology& t = ctx_.topo;
  if (t.is_first_stage()) {
    std::string bytes;
    ctx_.control->broadcast_tp(bytes, 0);
    return bytes;
  }
  return ctx_.control->recv(t.world_rank(t.pp_rank - 1, t.tp_rank), kPlanTag);
}

void StageRunner::forward_shutdown(const std::string& wire) {
  const Topology& t = ctx_.topo;
  if (!t.is_last_stage()) ctx_.control->send(wire, t.world_rank(t.pp_rank + 1, t.tp_rank), kPlanTag);
}

std::optional<StepOutput> StageRunner::forward(const StepPlan& plan, const std::string& wire) {
  const Topology& t = ctx_.topo;
  const int64_t tokens = plan.batch.num_tokens();
  Tensor hidden;
  if (t.is_first_stage()) {
    hidden = model_.embed(plan.batch);
  } else {
    hidden = Tensor::empty({tokens, model_.lm_shape().hidden_size}, DType::f32);
    ctx_.prev->recv(hidden, 0);
  }
  model_.run_layers(hidden, plan.batch, cache_);
  if (!t.is_last_stage()) {
    ctx_.control->send(wire, t.world_rank(t.pp_rank + 1, t.tp_rank), kPlanTag);
    ctx_.next->send(hidden, 1);
    return std::nullopt;
  }
  return model_.head(hidden, plan.batch);
}

std::optional<StepResult> StageRunner::run(const StepPlan& plan, const std::string& wire) {
  std::optional<StepOutput> out = forward(plan, wire);
  if (!out || ctx_.topo.rank != ctx_.topo.sampler_rank()) return std::nullopt;
  return sampler_.sample(plan, *out, model_.lm_shape().vocab_size);
}

}  // namespace lattice::parallel
