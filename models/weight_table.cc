#include "models/weight_table.h"

namespace lattice {

std::string moe_router_pattern(const ModelConfig& c) {
  return c.architecture == "MixtralForCausalLM" ? "model.layers.{layer}.block_sparse_moe.gate.weight"
                                                : "model.layers.{layer}.mlp.gate.weight";
}

std::string moe_expert_pattern(const ModelConfig& c, int64_t expert, ExpertProj proj) {
  const bool mixtral = c.architecture == "MixtralForCausalLM";
  const char* name = proj == ExpertProj::gate ? (mixtral ? "w1" : "gate_proj")
                     : proj == ExpertProj::up ? (mixtral ? "w3" : "up_proj")
                                              : (mixtral ? "w2" : "down_proj");
  return std::string(mixtral ? "model.layers.{layer}.block_sparse_moe.experts." : "model.layers.{layer}.mlp.experts.") +
         std::to_string(expert) + "." + name + ".weight";
}

std::vector<WeightSpec> llama_weight_table(const ModelConfig& c, bool expert_parallel) {
  const int64_t q_out = c.num_heads * c.head_dim, kv_out = c.num_kv_heads * c.head_dim;
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  std::vector<WeightSpec> table = {
      {"model.embed_tokens.weight", {c.vocab_size, h}, SplitRule::vocab, false},
      {"model.layers.{layer}.input_layernorm.weight", {h}, SplitRule::replicated, true},
      {"model.layers.{layer}.self_attn.q_proj.weight", {q_out, h}, SplitRule::column, true},
      {"model.layers.{layer}.self_attn.k_proj.weight", {kv_out, h}, SplitRule::kv_heads, true},
      {"model.layers.{layer}.self_attn.v_proj.weight", {kv_out, h}, SplitRule::kv_heads, true},
      {"model.layers.{layer}.self_attn.o_proj.weight", {h, q_out}, SplitRule::row, true},
      {"model.layers.{layer}.post_attention_layernorm.weight", {h}, SplitRule::replicated, true},
  };
  if (!c.is_moe()) {
    table.push_back({"model.layers.{layer}.mlp.gate_proj.weight", {inter, h}, SplitRule::column, true});
    table.push_back({"model.layers.{layer}.mlp.up_proj.weight", {inter, h}, SplitRule::column, true});
    table.push_back({"model.layers.{layer}.mlp.down_proj.weight", {h, inter}, SplitRule::row, true});
  } else {
    const int64_t moe_inter = c.moe_intermediate_size;
    table.push_back({moe_router_pattern(c), {c.num_experts, h}, SplitRule::replicated, true});
    for (int64_t e = 0; e < c.num_experts; ++e) {
      const SplitRule in = expert_parallel ? SplitRule::replicated : SplitRule::column;
      const SplitRule out = expert_parallel ? SplitRule::replicated : SplitRule::row;
      table.push_back({moe_expert_pattern(c, e, ExpertProj::gate), {moe_inter, h}, in, true, e});
      table.push_back({moe_expert_pattern(c, e, ExpertProj::up), {moe_inter, h}, in, true, e});
      table.push_back({moe_expert_pattern(c, e, ExpertProj::down), {h, moe_inter}, out, true, e});
    }
  }
  table.push_back({"model.norm.weight", {h}, SplitRule::replicated, false});
  if (c.qkv_bias) {
    table.push_back({"model.layers.{layer}.self_attn.q_proj.bias", {q_out}, SplitRule::column, true});
    table.push_back({"model.layers.{layer}.self_attn.k_proj.bias", {kv_out}, SplitRule::kv_heads, true});
    table.push_back({"model.layers.{layer}.self_attn.v_proj.bias", {kv_out}, SplitRule::kv_heads, true});
  }
  if (c.qk_norm) {
    table.push_back({"model.layers.{layer}.self_attn.q_norm.weight", {c.head_dim}, SplitRule::replicated, true});
    table.push_back({"model.layers.{layer}.self_attn.k_norm.weight", {c.head_dim}, SplitRule::replicated, true});
  }
  // Held by TP rank 0 only, which adds it once before o_proj's all-reduce.
  if (c.o_bias) table.push_back({"model.layers.{layer}.self_attn.o_proj.bias", {h}, SplitRule::first_rank, true});
  if (!c.tie_word_embeddings) table.push_back({"lm_head.weight", {c.vocab_size, h}, SplitRule::vocab, false});
  return table;
}

std::string weight_name(const WeightSpec& spec, int64_t layer) {
  std::string name = spec.pattern;
  if (auto at = name.find("{layer}"); at != std::string::npos) name.replace(at, 7, std::to_string(layer));
  return name;
}

bool ignorable_weight(const std::string& name) {
  const std::string inv_freq = ".rotary_emb.inv_freq";
  return name == "lm_head.weight" ||
         (name.size() >= inv_freq.size() && name.compare(name.size() - inv_freq.size(), inv_freq.size(), inv_freq) == 0);
}

}  // namespace lattice
