// The sampling state of every live sequence (its seeded generator and its tokens so far), kept where the
// logits are: in the single process, or on the last pipeline stage. Because the generator lives here and
// not in the batch, a sequence draws the same tokens whatever it is batched with, and a preempted sequence
// continues its stream after recomputation.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/scheduler/step_plan.h"

namespace lattice {

class SamplerBank {
 public:
  // Samples the sequences the plan marks, from `out` (the model's output for plan.batch).
  StepResult sample(const StepPlan& plan, const StepOutput& out, int64_t vocab_size);
  size_t live_sequences() const { return states_.size(); }

 private:
  struct State {
    std::unique_ptr<SequenceSampler> sampler;
    std::vector<int32_t> context;  // every token fed so far (prompt, then generated)
  };
  std::unordered_map<int64_t, State> states_;
};

}  // namespace lattice
