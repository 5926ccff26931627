// The sampling state of every live sequence (its tokens so far; its seed comes with each plan), kept where the
// logits are: in the single process, or on the last pipeline stage. Each draw depends only on the sequence's
// seed and its number of generated tokens, so a sequence draws the same tokens whatever it is batched with, a
// preempted sequence continues its stream after recomputation, and logits on the CPU and on a GPU give the same
// tokens. Logits on a GPU are sampled there (gpu_sampler.h): only token ids and log-probabilities come back.
//
// enqueue() and collect() split a step's sampling for async scheduling: on a GPU, enqueue() only enqueues it, so
// the next step can be enqueued (reading this one's tokens on the device: newest_device_tokens()) before collect()
// waits for the tokens. A plan whose pending tokens were not fed on the host (StepPlan::pending non-empty) has
// placeholders in its rows: the sequences' contexts get the real tokens when the step before it is finished.
#pragma once

#include <deque>

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
  // Nothing may be enqueued and not collected.
  StepResult sample(const StepPlan& plan, const StepOutput& out, int64_t vocab_size);
  // sample() without the wait on a GPU (on the CPU the step is sampled here); the result comes from collect(), in
  // enqueue order. With rows that still have placeholders (plan.pending), the plan enqueued just before must be
  // the step they take their tokens from, and none of those rows may have penalties (their context is read here).
  void enqueue(const StepPlan& plan, const StepOutput& out, int64_t vocab_size);
  StepResult collect();  // the oldest enqueued step's result (waiting for it)
  // The newest enqueued and uncollected step's result (waiting for it; it stays queued for collect()).
  const StepResult& newest_result();
  // That step's sampled tokens on the GPU (i32, in result order), valid until the step after next is enqueued;
  // null on the CPU, when nothing is queued, or when it sampled nothing.
  const int32_t* newest_device_tokens() const;
  size_t live_sequences() const { return states_.size(); }

 private:
  struct State {
    std::unique_ptr<SequenceSampler> sampler;  // CPU logits only
    std::vector<int32_t> context;              // every token fed so far (prompt, then generated)
  };
  // A placeholder in a sequence's context: position `position` takes result index `index` of a queued step.
  struct Fixup {
    int64_t seq;
    size_t position, index;
  };
  struct Queued {
    StepResult result;
    int slot = -1;                // >= 0: the GpuSampler slot whose results are not yet in `result`
    std::vector<Fixup> fixups;    // of the next step's placeholders, applied once `result` is known
  };
  void finish(Queued& q);
  void apply(const Fixup& f, const StepResult& result);

  std::unordered_map<int64_t, State> states_;
  std::unique_ptr<GpuSampler> gpu_;  // made only in CUDA builds
  std::deque<Queued> queue_;
};

}  // namespace lattice
