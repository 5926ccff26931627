// Runs a model's part of each step on one rank: builds the step's metadata, and owns the buffers the pieces
// write into (hidden states, logits), sized once for the largest step. Shared by the single-rank executor
// (engine/scheduler/executor.h) and the pipeline stage runner (parallel/stage_runner.h), so both run steps the
// same way on either backend. (The place where decode CUDA graphs will be captured.)
#pragma once

#include <optional>

#include "engine/causal_lm.h"
#include "engine/step_metadata.h"

namespace lattice {

struct RunnerLimits {
  int64_t max_tokens_per_step = 512;  // new tokens per step (prefill chunk + decode tokens)
  int64_t max_seqs = 256;             // sequences per step
};

class ModelRunner {
 public:
  // `exec` must be the context the model's weights and the cache live on.
  ModelRunner(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits);

  // Starts a step: builds and uploads its metadata. Returns the hidden-state buffer for its tokens
  // ([tokens, hidden], the model's activation dtype), which a later pipeline stage fills from the previous one.
  Tensor& begin(const StepBatch& batch);
  void embed();       // first stage: hidden = embeddings
  void run_layers();  // every stage: the model's layers over hidden
  // Last stage: the logits of the rows the batch asks for, on this rank's device; nullopt on TP ranks other
  // than 0, which take part in the head but receive no logits.
  std::optional<StepOutput> head();
  // One whole step on a model that holds every layer.
  StepOutput forward(const StepBatch& batch);

  // Device bytes the runner's own buffers take (hidden states and logits), for sizing the KV cache before it.
  static size_t buffer_bytes(const LmShape& shape, DType activation, const RunnerLimits& limits);

  const ops::ExecContext& exec() const { return exec_; }
  // The exec context when it is a GPU (for the sampler), else null; valid as long as the runner.
  const ops::ExecContext* gpu() const { return exec_.device.is_cpu() ? nullptr : &exec_; }
  CausalLM& model() { return model_; }

 private:
  StepContext step() const { return {exec_, meta_}; }

  CausalLM& model_;
  KvCache& cache_;
  ops::ExecContext exec_;
  StepMetadata meta_;
  Tensor hidden_buffer_, logits_buffer_;  // [max tokens, hidden], f32 [max tokens, vocab]
  Tensor hidden_;                          // this step's rows of hidden_buffer_
};

}  // namespace lattice
