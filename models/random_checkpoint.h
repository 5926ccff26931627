// Deterministic random-weight Llama-family checkpoints (Llama; Qwen3 with its q/k norms; Mistral with a sliding
// window; the mixtures of experts Mixtral and Qwen3-MoE) as config.json + model.safetensors, so that the demo, the benchmarks and tests run with nothing
// downloaded.
#pragma once

#include <cstdint>
#include <string>

#include "engine/core/dtype.h"

namespace lattice {

struct RandomLlamaSpec {
  // or "Qwen3ForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "Qwen3MoeForCausalLM"
  std::string architecture = "LlamaForCausalLM";
  int64_t vocab_size = 512;
  int64_t hidden_size = 128;
  int64_t intermediate_size = 352;
  int64_t num_layers = 4;
  int64_t num_heads = 8;
  int64_t num_kv_heads = 4;
  int64_t head_dim = 0;  // 0: hidden_size / num_heads
  int64_t sliding_window = 0;  // written for MistralForCausalLM when > 0
  int64_t max_position_embeddings = 2048;
  // Mixtral / Qwen3-MoE: experts per layer, experts per token, an expert's intermediate size (Mixtral's is
  // intermediate_size) and Qwen3-MoE's norm_topk_prob.
  int64_t num_experts = 8;
  int64_t num_experts_per_tok = 2;
  int64_t moe_intermediate_size = 96;
  bool norm_topk_prob = true;
  DType dtype = DType::f32;  // f32, bf16 or f16 on disk
  uint64_t seed = 0;

  // Named shapes: "tiny" (demo and tests) and "bench" (the 160M-parameter benchmark model).
  static RandomLlamaSpec preset(const std::string& name);
};

// Writes DIR/config.json and DIR/model.safetensors (creating DIR); same spec, same bytes.
void write_random_llama(const std::string& dir, const RandomLlamaSpec& spec);

}  // namespace lattice
