#include "engine/scheduler/executor.h"

#include "engine/core/error.h"

namespace lattice {

void LocalExecutor::submit(const StepPlan& plan) {
  const StepOutput out = model_.forward(plan.batch, cache_);
  done_.push_back(sampler_.sample(plan, out, model_.lm_shape().vocab_size));
}

StepResult LocalExecutor::collect() {
  LATTICE_CHECK(!done_.empty(), "collect() without a submitted plan");
  StepResult r = std::move(done_.front());
  done_.pop_front();
  return r;
}

}  // namespace lattice
