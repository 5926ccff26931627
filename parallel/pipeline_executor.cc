#include "parallel/pipeline_executor.h"

#include "parallel/plan_codec.h"

namespace lattice::parallel {

PipelineExecutor::PipelineExecutor(StageRunner& runner) : runner_(runner) {
  LATTICE_CHECK(runner_.context().topo.is_coordinator(), "the pipeline executor runs on rank 0 only");
}

void PipelineExecutor::submit(const StepPlan& plan) {
  std::string wire = encode_plan(plan);
  runner_.context().control->broadcast_tp(wire, 0);
  if (std::optional<StepResult> result = runner_.run(plan, wire, {})) local_.push_back(std::move(*result));
}

StepResult PipelineExecutor::collect() {
  if (!local_.empty()) {
    StepResult r = std::move(local_.front());
    local_.pop_front();
    return r;
  }
  ParallelContext& ctx = runner_.context();
  return decode_result(ctx.control->recv(ctx.topo.sampler_rank(), kResultTag));
}

bool PipelineExecutor::result_ready() {
  ParallelContext& ctx = runner_.context();
  return !local_.empty() || ctx.control->probe(ctx.topo.sampler_rank(), kResultTag);
}

void PipelineExecutor::shutdown() {
  std::string wire = encode_shutdown();
  runner_.context().control->broadcast_tp(wire, 0);
  runner_.forward_shutdown(wire);
}

void run_worker(StageRunner& runner, const std::function<void(const StepPlan&)>& before_step) {
  ParallelContext& ctx = runner.context();
  while (true) {
    const std::string wire = runner.receive_plan();
    DecodedPlan decoded = decode_plan(wire);
    if (decoded.shutdown) {
      runner.forward_shutdown(wire);
      return;
    }
    if (before_step) before_step(decoded.plan);
    if (std::optional<StepResult> result = runner.run(decoded.plan, wire, std::move(decoded.stage_times)))
      ctx.control->post(encode_result(*result), 0, kResultTag);
  }
}

}  // namespace lattice::parallel
