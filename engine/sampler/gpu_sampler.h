// Sampling on the GPU (CUDA builds only): the same tokens as SequenceSampler (sampler.h) from the same seeds,
// drawn where the logits are. Per step: the per-row parameters and the contexts of the rows with penalties are
// packed into one pinned buffer and copied with one async copy; the kernels run penalties -> check_logits ->
// greedy_sample or sample_top_k -> the raw-logit log-probability of the chosen token -> the top-n list; tokens,
// log-probabilities, top lists and row checks come back in one copy, and the host waits once. Only ids and
// log-probabilities leave the GPU.
// Device and pinned buffers are kept between steps and only grow. enqueue() and finish() split a step's sampling
// so that two can be in flight (async scheduling): each uses one of two slots (its own pinned and device
// in/out buffers and an event), and the next step can read the sampled tokens on the device (device_tokens())
// before they reach the host.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cuda/device_context.h"
#include "engine/ops/exec_context.h"
#include "engine/sampler/sampler.h"

namespace lattice {

// One sequence to sample this step.
struct GpuSampleRequest {
  int64_t row = 0;                                // its row of the step's logits
  const SamplingParams* params = nullptr;         // validated (SamplingParams::validate)
  uint64_t seed = 0;
  const std::vector<int32_t>* context = nullptr;  // every token so far: prompt, then generated
  int64_t prompt_len = 0;
};

class GpuSampler {
 public:
  // `exec`: the GPU's context (device, stream); it must outlive the sampler.
  explicit GpuSampler(const ops::ExecContext& exec);
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // logits: f32 [rows, vocab] on exec's device. One SampledToken per request, in order: the token, logprob and
  // top list SequenceSampler::sample gives for the same logits, context and seed (log-probabilities to f32
  // rounding). A row that kernels::cpu::check_logits refuses after penalties (NaN, +inf, nothing but -inf) gets a
  // SampledToken with the error SequenceSampler gives it, as does a row whose draw is not a token with a finite
  // log-probability; the other rows are unaffected.
  // enqueue() then finish().
  std::vector<SampledToken> sample(const Tensor& logits, const std::vector<GpuSampleRequest>& requests);

  // Enqueues the step's sampling and the copy of its results to pinned memory on exec's stream, without waiting;
  // returns its slot. The requests' parameters and contexts are read here only. Throws when both slots are
  // still unfinished.
  int enqueue(const Tensor& logits, const std::vector<GpuSampleRequest>& requests);
  // The slot's sampled tokens on the device (i32, one per request, in order), valid until the slot's next
  // enqueue(); null when the slot had no requests.
  const int32_t* device_tokens(int slot) const;
  // Waits for the slot's results (its event) and returns them as sample() does.
  std::vector<SampledToken> finish(int slot);

 private:
  struct Slot {
    PinnedBuffer host_in, host_out;  // packed parameters and contexts; tokens and log-probabilities
    Tensor device_in, device_out;    // u8 mirrors of the two
    CUevent_st* done = nullptr;      // recorded after the copy to host_out
    bool busy = false;               // enqueued, not yet finished
    int64_t vocab = 0;
    int32_t top_n = 0;
    std::vector<int32_t> logprobs;        // per request: its params' logprobs
    std::vector<int64_t> context_sizes;   // per request: for error messages
  };

  const ops::ExecContext& exec_;
  Slot slots_[2];
  int next_ = 0;
  Tensor gathered_;                  // f32 [rows, vocab]: the sampled rows when they are not one run of the logits
  Tensor penalised_;                 // f32 [rows, vocab]
  Tensor penalty_workspace_;         // u8, kernels::cuda::penalties_workspace_bytes
};

}  // namespace lattice
