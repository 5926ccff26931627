// The sampling state of every live sequence (its tokens so far; its seed comes with each plan), kept where the
// logits are: in the single process, or on the last pipeline stage. Each draw depends only on the sequence's
// seed and its number of generated tokens, so a sequence draws the same tokens whatever it is batched with, a
// preempted sequence continues its stream after recomputation, and logits on the CPU and on a GPU give the same
// tokens. Logits on a GPU are sampled there (gpu_sampler.h): only token ids and log-probabilities come back.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/ops/exec_context.h"
#include "engine/scheduler/step_plan.h"

namespace lattice {

class GpuSampler;

class SamplerBank {
 public:
  // `gpu` (may be null): the context of the GPU whose logits this bank samples (CUDA builds); it must outlive
  // the bank. Without it, the logits must be on the CPU.
  explicit SamplerBank(const ops::ExecContext* gpu = nullptr);
  ~SamplerBank();
  SamplerBank(SamplerBank&&) noexcept;
  SamplerBank& operator=(SamplerBank&&) noexcept;

  // Samples the sequences the plan marks, from `out` (the model's output for plan.batch, on the CPU or on the
  // bank's GPU). A row that cannot be sampled (non-finite logits, or any error confined to that row) gives a
  // SampledToken with an error; only a failure of the whole step (a bad plan, a device error) throws.
  StepResult sample(const StepPlan& plan, const StepOutput& out, int64_t vocab_size);
  size_t live_sequences() const { return states_.size(); }

 private:
  struct State {
    std::unique_ptr<SequenceSampler> sampler;  // CPU logits only
    std::vector<int32_t> context;              // every token fed so far (prompt, then generated)
  };
  std::unordered_map<int64_t, State> states_;
  std::unique_ptr<GpuSampler> gpu_;  // made only in CUDA builds
};

}  // namespace lattice
