// Hugging Face config.json for the Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
// Qwen3ForCausalLM) and its mixture-of-experts members (MixtralForCausalLM, Qwen3MoeForCausalLM), whose MLP is
// a sparse MoE block in every layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lattice {

struct RopeScaling {
  std::string type = "none";  // "none" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2, or Llama's attention_bias
  bool o_bias = false;    // Llama's attention_bias
  int64_t sliding_window = 0;  // > 0: each position attends to the last sliding_window positions only (Mistral)
  bool qk_norm = false;   // Qwen3: per-head RMSNorm of q and k (q_norm / k_norm [head_dim]) before RoPE
  // Mixture of experts (num_experts > 0): every layer's MLP is num_experts SwiGLU experts of
  // moe_intermediate_size, num_experts_per_tok of them per token (Mixtral: num_local_experts, intermediate_size;
  // Qwen3-MoE: num_experts, moe_intermediate_size); the top-k routing weights are renormalised when
  // norm_topk_prob (always for Mixtral).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = false;
  RopeScaling rope_scaling;
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;

  // Parses and validates; errors name the file and the field.
  static ModelConfig from_file(const std::string& path);
  static ModelConfig from_json_text(const std::string& text, const std::string& origin);

  bool is_moe() const { return num_experts > 0; }

  // Rotary inverse frequencies [head_dim / 2], with rope_scaling applied.
  std::vector<float> rope_inv_freq() const;
};

// "LlamaForCausalLM, MistralForCausalLM, ..."
std::string supported_architectures();

}  // namespace lattice
