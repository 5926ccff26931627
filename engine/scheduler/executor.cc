#include "engine/scheduler/executor.h"

#include "engine/core/error.h"

namespace lattice {

LocalExecutor::LocalExecutor(ModelRunner& runner) : runner_(runner), sampler_(runner.gpu()) {}

LocalExecutor::LocalExecutor(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits)
    : owned_(std::make_unique<ModelRunner>(model, cache, exec, limits)), runner_(*owned_), sampler_(runner_.gpu()) {}

void LocalExecutor::submit(const StepPlan& plan) {
  // Each step is sampled at submission, so the tokens a plan made ahead waits for are already on the host.
  StepPlan fed;
  if (!plan.pending.empty()) {
    fed = plan;
    feed_pending_tokens(fed, last_);
  }
  const StepPlan& run = plan.pending.empty() ? plan : fed;
  const StepOutput out = runner_.forward(run.batch);
  last_ = sampler_.sample(run, out, runner_.model().lm_shape().vocab_size);
  done_.push_back(last_);
}

StepResult LocalExecutor::collect() {
  LATTICE_CHECK(!done_.empty(), "collect() without a submitted plan");
  StepResult r = std::move(done_.front());
  done_.pop_front();
  return r;
}

}  // namespace lattice
