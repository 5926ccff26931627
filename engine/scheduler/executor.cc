#include "engine/scheduler/executor.h"

#include "engine/core/error.h"

namespace lattice {

LocalExecutor::LocalExecutor(ModelRunner& runner) : runner_(runner), sampler_(runner.gpu()) {}

LocalExecutor::LocalExecutor(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits)
    : owned_(std::make_unique<ModelRunner>(model, cache, exec, limits)), runner_(*owned_), sampler_(runner_.gpu()) {}

void LocalExecutor::submit(const StepPlan& plan) {
  const StepOutput out = runner_.forward(plan.batch);
  done_.push_back(sampler_.sample(plan, out, runner_.model().lm_shape().vocab_size));
}

StepResult LocalExecutor::collect() {
  LATTICE_CHECK(!done_.empty(), "collect() without a submitted plan");
  StepResult r = std::move(done_.front());
  done_.pop_front();
  return r;
}

}  // namespace lattice
