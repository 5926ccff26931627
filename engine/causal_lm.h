// What the engine needs from a model: its shape and a forward step over the paged KV cache.
// Models (models/) implement it; the scheduler and the launcher drive it.
#pragma once

#include <cstdint>

#include "engine/kv_cache/kv_cache.h"
#include "engine/step.h"

namespace lattice {

struct LmShape {
  int64_t vocab_size = 0;
  int64_t max_positions = 0;  // longest context the model accepts
  KvCacheShape kv;            // block_size is the model's default; the cache may choose another
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const LmShape& lm_shape() const = 0;
  // Runs one step: appends each sequence's new tokens to the cache and returns their logits.
  virtual StepOutput forward(const StepBatch& batch, KvCache& cache) = 0;
};

}  // namespace lattice
