#include "engine/scheduler/executor.h"

#include <algorithm>

#include "engine/core/error.h"
#include "engine/ops/op_profile.h"

namespace lattice {

namespace {

ops::StepPhase step_phase(const StepBatch& batch) {
  const bool chunk = std::any_of(batch.seqs.begin(), batch.seqs.end(),
                                 [](const SequenceStep& s) { return s.tokens.size() > 1; });
  return chunk ? ops::StepPhase::prefill : ops::StepPhase::decode;
}

}  // namespace

LocalExecutor::LocalExecutor(ModelRunner& runner) : runner_(runner), sampler_(runner.gpu()) {}

LocalExecutor::LocalExecutor(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits)
    : owned_(std::make_unique<ModelRunner>(model, cache, exec, limits)), runner_(*owned_), sampler_(runner_.gpu()) {}

void LocalExecutor::submit(const StepPlan& plan) {
  const StepOutput out = runner_.forward(plan.batch);
  ops::OpProfiler* profiler = runner_.exec().profiler;
  {
    ops::OpScope time(runner_.exec(), ops::OpKind::sampling);
    done_.push_back(sampler_.sample(plan, out, runner_.model().lm_shape().vocab_size));
  }
  if (profiler) profiler->step_done(step_phase(plan.batch));
}

StepResult LocalExecutor::collect() {
  LATTICE_CHECK(!done_.empty(), "collect() without a submitted plan");
  StepResult r = std::move(done_.front());
  done_.pop_front();
  return r;
}

}  // namespace lattice
