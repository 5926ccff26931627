// Runs scheduled steps. The scheduler submits plans and collects results in submission order; an executor
// that is a pipeline keeps several plans in flight (one per stage) so that no stage sits idle. An executor that
// feeds pending tokens also takes, beyond max_in_flight(), one plan made ahead (async scheduling): a
// pure-decode step planned while the step before it is in flight, whose tokens are that step's samples
// (StepPlan::pending).
#pragma once

#include <memory>

#include "engine/model_runner.h"
#include "engine/ops/op_profile.h"
#include "engine/sampler/sampler_bank.h"
#include "engine/scheduler/step_plan.h"

namespace lattice {

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual int max_in_flight() const = 0;
  virtual void submit(const StepPlan& plan) = 0;
  virtual StepResult collect() = 0;  // the oldest submitted plan's result
  // Whether collect() would return without waiting for another rank (so that a coordinator driving several
  // replicas takes the results that are there first). Only asked while a plan is in flight.
  virtual bool result_ready() { return true; }
  // Whether submit() takes a plan with pending tokens (StepPlan::pending) while the plan submitted before it is
  // in flight, feeding in that plan's sampled tokens itself. Only then does the scheduler plan ahead.
  virtual bool feeds_pending_tokens() const { return false; }
};

// One process: runs each plan at submission through the model and samples it (on the model's device). On a GPU
// submit() only enqueues the step and its sampling, and collect() waits for the tokens; a plan made ahead is then
// fed on the device from the step before (ModelRunner's DeviceTokenFeed), so it is enqueued before that step's
// tokens reach the host, unless a fed row has penalties (the sampler reads its context on the host).
class LocalExecutor final : public StepExecutor {
 public:
  explicit LocalExecutor(ModelRunner& runner);
  // With a runner of its own, on the CPU unless `exec` says otherwise.
  LocalExecutor(CausalLM& model, KvCache& cache, const ops::ExecContext& exec = ops::ExecContext::cpu(),
                const RunnerLimits& limits = {});
  int max_in_flight() const override { return 1; }
  void submit(const StepPlan& plan) override;
  StepResult collect() override;
  bool feeds_pending_tokens() const override { return true; }
  // Steps planned ahead whose tokens were fed on the device (a GPU, no penalty among the fed rows), since
  // construction; the others waited for the tokens on the host.
  int64_t device_fed_steps() const { return device_fed_steps_; }

 private:
  void sample(const StepPlan& plan, const StepOutput& out, int64_t vocab);  // enqueued, timed as sampling

  std::unique_ptr<ModelRunner> owned_;
  ModelRunner& runner_;
  SamplerBank sampler_;
  int64_t device_fed_steps_ = 0;
  std::deque<ops::StepPhase> profiled_phases_;  // of the steps in flight, when the runner has a profiler
};

}  // namespace lattice
