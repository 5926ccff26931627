#include "parallel/pipeline_executor.h"

#include "parallel/plan_codec.h"

namespace lattice::parallel {

PipelineExecutor::PipelineExecutor(StageRunner& runner)
    : runner_(runner), progress_(runner.context().topo.world_size) {
  LATTICE_CHECK(runner_.context().topo.is_coordinator(), "the pipeline executor runs on rank 0 only");
}

void PipelineExecutor::record(int source, const std::string& bytes) {
  const auto [phase, step] = decode_progress(bytes);
  progress_.record(source, phase, step);
}

void PipelineExecutor::drain_progress() {
  ControlChannel& control = *runner_.context().control;
  int source = 0;
  while (std::optional<std::string> bytes = control.try_recv(kAnyRank, kProgressTag, &source)) record(source, *bytes);
}

void PipelineExecutor::submit(const StepPlan& plan) {
  drain_progress();
  const int64_t step = ++submitted_;
  StepPlan fed;
  if (!plan.pending.empty()) {
    LATTICE_CHECK(feeds_pending_tokens(), "a plan made ahead reached a pipeline of ", runner_.context().topo.pp,
                  " stages");
    fed = plan;
    feed_pending_tokens(fed, last_local_);
  }
  const StepPlan& run = plan.pending.empty() ? plan : fed;
  std::string wire = encode_plan(run);
  runner_.context().control->broadcast_tp(wire, 0);
  progress_.record(0, StepPhase::started, step);
  if (std::optional<StepResult> result = runner_.run(run, wire, {})) {
    last_local_ = *result;
    local_.push_back(std::move(*result));
  }
  progress_.record(0, StepPhase::finished, step);
}

StepResult PipelineExecutor::collect() {
  if (!local_.empty()) {
    StepResult r = std::move(local_.front());
    local_.pop_front();
    drain_progress();
    return r;
  }
  // Progress keeps being recorded while a stage is slow (or stalled).
  ParallelContext& ctx = runner_.context();
  return decode_result(ctx.control->recv_with(ctx.topo.sampler_rank(), kResultTag, kProgressTag,
                                              [this](int source, const std::string& bytes) { record(source, bytes); }));
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
  for (int64_t step = 1;; ++step) {
    const std::string wire = runner.receive_plan();
    DecodedPlan decoded = decode_plan(wire);
    if (decoded.shutdown) {
      runner.forward_shutdown(wire);
      return;
    }
    ctx.control->post(encode_progress(StepPhase::started, step), 0, kProgressTag);
    if (before_step) before_step(decoded.plan);
    if (std::optional<StepResult> result = runner.run(decoded.plan, wire, std::move(decoded.stage_times)))
      ctx.control->post(encode_result(*result), 0, kResultTag);
    ctx.control->post(encode_progress(StepPhase::finished, step), 0, kProgressTag);
  }
}

}  // namespace lattice::parallel
