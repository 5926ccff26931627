// What the engine needs from a model: its shape and a step over the paged KV cache, in three pieces so that
// a pipeline stage runner can run only its part: embed (first stage), run_layers (every stage's own layers),
// head (last stage). Models (models/) implement it; the scheduler, the stage runner and the launcher drive it.
#pragma once

#include <cstdint>

#include "engine/kv_cache/kv_cache.h"
#include "engine/step.h"

namespace lattice {

struct LmShape {
  int64_t vocab_size = 0;
  int64_t max_positions = 0;  // longest context the model accepts
  int64_t hidden_size = 0;
  KvCacheShape kv;            // this rank's layers and KV heads; block_size is the default
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const LmShape& lm_shape() const = 0;

  // f32 [tokens, hidden] for the batch's new tokens (the first pipeline stage).
  virtual Tensor embed(const StepBatch& batch) = 0;
  // Runs this model's layers over `hidden`, appending each sequence's new K/V to the cache.
  virtual void run_layers(Tensor& hidden, const StepBatch& batch, KvCache& cache) = 0;
  // Final norm and logits for the rows the batch asks for (the last pipeline stage).
  virtual StepOutput head(const Tensor& hidden, const StepBatch& batch) = 0;

  // embed, run_layers, head: one step on a model that holds every layer.
  StepOutput forward(const StepBatch& batch, KvCache& cache);
};

}  // namespace lattice
