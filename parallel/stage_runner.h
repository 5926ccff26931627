// Runs one rank's part of a step plan on its pipeline stage: the first stage embeds the new tokens, a later
// stage receives the previous stage's hidden states; every stage runs its own layers; a stage with a
// successor passes the plan and the hidden states on; the last stage computes logits, and its TP rank 0
// (the sampler rank) samples them. Plans travel with the activations, so each rank sees plans in order.
#pragma once

#include <optional>
#include <string>

#include "engine/model_runner.h"
#include "engine/sampler/sampler_bank.h"
#include "parallel/mpi_runtime.h"

namespace lattice::parallel {

class StageRunner {
 public:
  StageRunner(ParallelContext& ctx, ModelRunner& runner);

  // The stage's part of `plan` (`wire` is its encoding, forwarded with this stage's time appended). Returns
  // the logits on the last stage, nothing elsewhere; `seconds` (if given) receives this stage's time.
  std::optional<StepOutput> forward(const StepPlan& plan, const std::string& wire, double* seconds = nullptr);
  // forward(), then sampling on the sampler rank, which gets the result back with the stage times
  // (`upstream`: those of the earlier stages, from the plan).
  std::optional<StepResult> run(const StepPlan& plan, const std::string& wire, std::vector<StageTime> upstream);
  // Passes a shutdown plan on to the next stage.
  void forward_shutdown(const std::string& wire);

  // The next plan for this rank: from the coordinator through the TP group on the first stage (a replica
  // leader other than rank 0 receives it from rank 0 first), from the previous stage otherwise. Not for the
  // coordinator itself, which makes the plans.
  std::string receive_plan();

  ParallelContext& context() { return ctx_; }

 private:
  ParallelContext& ctx_;
  ModelRunner& runner_;
  SamplerBank sampler_;
};

}  // namespace lattice::parallel
