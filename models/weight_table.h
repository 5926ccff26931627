// The weights an architecture expects: name pattern, shape, and how tensor parallelism splits it.
// Every weight in the table is checked against the checkpoint at load (presence, shape).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/model_config.h"
#include "parallel/sharding.h"

namespace lattice {

using parallel::SplitRule;

struct WeightSpec {
  std::string pattern;         // "{layer}" stands for the layer index
  std::vector<int64_t> shape;  // as stored in the checkpoint
  SplitRule split;
  bool per_layer;
};

// The Llama-family table (Llama, Mistral, Qwen2, Qwen3 differ only through the config: biases, tied embeddings,
// Qwen3's q/k norms).
std::vector<WeightSpec> llama_weight_table(const ModelConfig& config);

std::string weight_name(const WeightSpec& spec, int64_t layer);

}  // namespace lattice
