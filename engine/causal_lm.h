// What the engine needs from a model: its shape and a step over the paged KV cache, in three pieces so that
// a pipeline stage runner can run only its part: embed (first stage), run_layers (every stage's own layers),
// head (last stage). Models (models/) implement it; engine/model_runner.h drives it for the single-rank
// executor and the pipeline stage runner alike.
//
// The pieces read the step's metadata (engine/step_metadata.h) and write into buffers the caller owns; a model
// allocates its own activation buffers once, in reserve(), so a step allocates nothing.
#pragma once

#include <cstdint>

#include "engine/kv_cache/kv_cache.h"
#include "engine/ops/exec_context.h"
#include "engine/step_metadata.h"

namespace lattice {

struct LmShape {
  int64_t vocab_size = 0;
  int64_t max_positions = 0;  // longest context the model accepts
  int64_t hidden_size = 0;
  KvCacheShape kv;            // this rank's layers and KV heads; block_size is the default
  int64_t sliding_window = 0;  // > 0: a position attends to the last sliding_window positions only (Mistral), so
                               // the scheduler frees the KV blocks that fall wholly before every future window
};

// Where a step runs and what it reads: the device context and the step's metadata on that device.
struct StepContext {
  const ops::ExecContext& exec;
  const StepMetadata& meta;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const LmShape& lm_shape() const = 0;
  // The dtype of activations and of the KV cache; the device the weights live on.
  virtual DType activation_dtype() const = 0;
  virtual Device device() const = 0;
  // Allocates the activation buffers for steps of up to `max_tokens` tokens (once, before the step loop).
  virtual void reserve(int64_t max_tokens) = 0;

  // hidden [tokens, hidden_size] (activation dtype) = the embeddings of meta.ids() (the first pipeline stage).
  virtual void embed(const StepContext& step, Tensor& hidden) = 0;
  // Runs this model's layers over `hidden` in place, writing each new token's K/V into the cache.
  virtual void run_layers(const StepContext& step, Tensor& hidden, KvCache& cache) = 0;
  // logits f32 [meta.num_logit_rows(), vocab_size] = final norm and lm_head of the rows meta.logit_rows() names
  // (the last pipeline stage). Under tensor parallelism only TP rank 0 (the sampler rank) receives the logits;
  // the others leave `logits` untouched. Returns whether this rank filled `logits`.
  virtual bool head(const StepContext& step, const Tensor& hidden, Tensor& logits) = 0;
};

}  // namespace lattice
