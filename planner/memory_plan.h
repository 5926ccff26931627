// Device memory of one rank of a tp x pp layout, sized the way the engine sizes it at start-up
// (launcher/engine_setup.cc): weights, the attention scratch (ops::attention_scratch_bytes), the model's activation
// buffers, the step buffers (ModelRunner::buffer_bytes), then the KV cache gets what --gpu-memory-utilization leaves
// (gpu_kv_budget), in whole blocks (KvCacheShape::blocks_in).
#pragma once

#include <cstdint>
#include <string>

#include "engine/model_runner.h"
#include "models/model_config.h"
#include "planner/hardware_profile.h"

namespace lattice::planner {

struct MemoryOptions {
  DType dtype = DType::bf16;
  double gpu_memory_utilization = 0.90;
  int64_t block_size = 16;
  RunnerLimits limits;
};

struct RankMemory {
  double weight_bytes = 0;
  double scratch_bytes = 0;     // attention split-K scratch
  double activation_bytes = 0;  // the model's reserve() buffers
  double runner_bytes = 0;      // hidden + logits step buffers
  double reserved_bytes = 0;    // the profile's context/library share
  int64_t kv_blocks = 0;        // 0 when nothing is left for the cache
  double kv_bytes = 0;
  int64_t kv_tokens = 0;
  bool fits = false;
  std::string why_not;          // the engine's own message when it does not fit

  double workspace_bytes() const { return scratch_bytes + activation_bytes + runner_bytes + reserved_bytes; }
  double total_bytes() const { return weight_bytes + workspace_bytes() + kv_bytes; }
};

// Bytes of the weights a rank holding `layers` layers (and the embedding when `first`, the head when `last`) of
// a `tp`-way shard keeps, in `dtype`.
double shard_weight_bytes(const ModelConfig& config, int tp, int64_t layers, bool first, bool last, DType dtype);

// Memory of the rank of stage [layer_begin, layer_end) in a tp-way split on a device of `hw`.
RankMemory rank_memory(const ModelConfig& config, int tp, int64_t layer_begin, int64_t layer_end,
                       const HardwareProfile& hw, const MemoryOptions& options);

}  // namespace lattice::planner
