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
  int64_t expert = -1;  // a MoE expert's weight: its expert index (a rank under expert parallelism loads its own)
};

// A MoE expert's projections (Mixtral w1, w3, w2; Qwen3-MoE gate_proj, up_proj, down_proj).
enum class ExpertProj { gate, up, down };

// The Llama-family table (Llama, Mistral, Qwen2, Qwen3 differ only through the config: biases, tied embeddings,
// Qwen3's q/k norms). A MoE config (Mixtral, Qwen3-MoE) has a router and num_experts experts per layer instead of
// the dense MLP: the router replicated, the experts split like the dense MLP (gate/up by column, down by row),
// or, with expert_parallel, whole (replicated: the rank that owns an expert reads all of it, the others none).
std::vector<WeightSpec> llama_weight_table(const ModelConfig& config, bool expert_parallel = false);

// The name patterns of a MoE layer's router [num_experts, hidden] and of expert e's projections.
std::string moe_router_pattern(const ModelConfig& config);
std::string moe_expert_pattern(const ModelConfig& config, int64_t expert, ExpertProj proj);

std::string weight_name(const WeightSpec& spec, int64_t layer);

// Whether a checkpoint tensor that no table entry names may be left unread: rotary inv_freq buffers (older
// Llama exports) and lm_head.weight, which tied-embedding checkpoints may store as a copy of the embedding.
bool ignorable_weight(const std::string& name);

}  // namespace lattice
