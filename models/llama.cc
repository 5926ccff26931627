#include "models/llama.h"

#include <cmath>
#include <filesystem>

#include "engine/ops/ops.h"

namespace lattice {

std::unique_ptr<LlamaModel> LlamaModel::load(const std::string& dir, WeightLoader::Progress progress) {
  LATTICE_CHECK(std::filesystem::is_directory(dir), "model directory '", dir, "' does not exist");
  ModelConfig config = ModelConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  Checkpoint checkpoint = Checkpoint::open(dir);
  return std::make_unique<LlamaModel>(std::move(config), checkpoint, std::move(progress));
}

LlamaModel::LlamaModel(ModelConfig config, const Checkpoint& checkpoint, WeightLoader::Progress progress)
    : config_(std::move(config)) {
  const ModelConfig& c = config_;
  shape_ = {c.vocab_size, c.max_position_embeddings, {c.num_layers, c.num_kv_heads, c.head_dim, 16}};
  WeightLoader w(checkpoint, llama_weight_table(c), c.num_layers, std::move(progress));
  embed_ = w.load("model.embed_tokens.weight");
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LlamaLayer layer;
    layer.input_norm = w.load("model.layers.{layer}.input_layernorm.weight", l);
    layer.wq = w.load("model.layers.{layer}.self_attn.q_proj.weight", l);
    layer.wk = w.load("model.layers.{layer}.self_attn.k_proj.weight", l);
    layer.wv = w.load("model.layers.{layer}.self_attn.v_proj.weight", l);
    if (c.qkv_bias) {
      layer.bq = w.load("model.layers.{layer}.self_attn.q_proj.bias", l);
      layer.bk = w.load("model.layers.{layer}.self_attn.k_proj.bias", l);
      layer.bv = w.load("model.layers.{layer}.self_attn.v_proj.bias", l);
    }
    layer.wo = w.load("model.layers.{layer}.self_attn.o_proj.weight", l);
    if (c.o_bias) layer.bo = w.load("model.layers.{layer}.self_attn.o_proj.bias", l);
    layer.post_norm = w.load("model.layers.{layer}.post_attention_layernorm.weight", l);
    layer.w_gate = w.load("model.layers.{layer}.mlp.gate_proj.weight", l);
    layer.w_up = w.load("model.layers.{layer}.mlp.up_proj.weight", l);
    layer.w_down = w.load("model.layers.{layer}.mlp.down_proj.weight", l);
    layers_.push_back(std::move(layer));
  }
  final_norm_ = w.load("model.norm.weight");
  lm_head_ = c.tie_word_embeddings ? embed_ : w.load("lm_head.weight");
  inv_freq_ = Tensor::from_vector(c.rope_inv_freq(), {c.head_dim / 2});
}

void LlamaModel::validate(const StepBatch& batch, const KvCache& cache) const {
  LATTICE_CHECK(!batch.seqs.empty(), "a step needs at least one sequence");
  LATTICE_CHECK(cache.shape().layers == config_.num_layers && cache.shape().kv_heads == config_.num_kv_heads &&
                    cache.shape().head_dim == config_.head_dim,
                "KV cache (", cache.shape().layers, " layers, ", cache.shape().kv_heads, " heads of ",
                cache.shape().head_dim, ") does not fit the model (", config_.num_layers, " layers, ",
                config_.num_kv_heads, " heads of ", config_.head_dim, ")");
  for (const SequenceStep& s : batch.seqs) {
    LATTICE_CHECK(s.context_len() <= config_.max_position_embeddings, "sequence ", s.seq_id, " reaches position ",
                  s.context_len(), ", past the model's ", config_.max_position_embeddings, " positions");
    for (int32_t t : s.tokens)
      LATTICE_CHECK(t >= 0 && t < config_.vocab_size, "sequence ", s.seq_id, ": token id ", t,
                    " is out of range for vocabulary size ", config_.vocab_size);
  }
}

void LlamaModel::run_layer(int64_t l, Tensor& hidden, const Tensor& positions, const ops::AttentionMetadata& meta,
                           KvCache& cache) const {
  const LlamaLayer& w = layers_[l];
  const ModelConfig& c = config_;
  const int64_t tokens = hidden.dim(0);
  auto opt = [](const Tensor& t) { return t.defined() ? &t : nullptr; };

  Tensor x = Tensor::empty(hidden.shape(), DType::f32);
  ops::rms_norm(hidden, w.input_norm, static_cast<float>(c.rms_norm_eps), x);
  Tensor q = Tensor::empty({tokens, c.num_heads * c.head_dim}, DType::f32);
  Tensor k = Tensor::empty({tokens, c.num_kv_heads * c.head_dim}, DType::f32);
  Tensor v = Tensor::empty({tokens, c.num_kv_heads * c.head_dim}, DType::f32);
  ops::linear(x, w.wq, opt(w.bq), q);
  ops::linear(x, w.wk, opt(w.bk), k);
  ops::linear(x, w.wv, opt(w.bv), v);
  Tensor q3 = q.reshape({tokens, c.num_heads, c.head_dim});
  Tensor k3 = k.reshape({tokens, c.num_kv_heads, c.head_dim});
  Tensor v3 = v.reshape({tokens, c.num_kv_heads, c.head_dim});
  ops::rope_(q3, positions, inv_freq_);
  ops::rope_(k3, positions, inv_freq_);
  Tensor attn = Tensor::empty(q3.shape(), DType::f32);
  ops::paged_attention(q3, k3, v3, meta, cache.k(l), cache.v(l), static_cast<float>(1.0 / std::sqrt(c.head_dim)),
                       attn);
  ops::linear(attn.reshape({tokens, c.num_heads * c.head_dim}), w.wo, opt(w.bo), x);
  ops::add_(hidden, x);

  ops::rms_norm(hidden, w.post_norm, static_cast<float>(c.rms_norm_eps), x);
  Tensor gate = Tensor::empty({tokens, c.intermediate_size}, DType::f32);
  Tensor up = Tensor::empty({tokens, c.intermediate_size}, DType::f32);
  ops::linear(x, w.w_gate, nullptr, gate);
  ops::linear(x, w.w_up, nullptr, up);
  ops::silu_mul(gate, up, gate);
  ops::linear(gate, w.w_down, nullptr, x);
  ops::add_(hidden, x);
}

StepOutput LlamaModel::forward(const StepBatch& batch, KvCache& cache) {
  validate(batch, cache);
  const ModelConfig& c = config_;
  const int64_t tokens = batch.num_tokens();
  std::vector<int32_t> ids, positions;
  for (const SequenceStep& s : batch.seqs)
    for (size_t j = 0; j < s.tokens.size(); ++j) {
      ids.push_back(s.tokens[j]);
      positions.push_back(static_cast<int32_t>(s.start_pos + static_cast<int64_t>(j)));
    }
  const Tensor ids_t = Tensor::from_vector(ids, {tokens});
  const Tensor positions_t = Tensor::from_vector(positions, {tokens});
  const ops::AttentionMetadata meta(batch, cache.shape().block_size, cache.num_blocks());

  Tensor hidden = Tensor::empty({tokens, c.hidden_size}, DType::f32);
  ops::embedding(embed_, ids_t, hidden);
  for (int64_t l = 0; l < c.num_layers; ++l) run_layer(l, hidden, positions_t, meta, cache);

  // Only the rows whose logits are wanted go through the final norm and the lm_head.
  StepOutput out;
  out.row_begin.push_back(0);
  std::vector<int64_t> rows;
  int64_t row = 0;
  for (const SequenceStep& s : batch.seqs) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    for (int64_t j = s.all_logits ? 0 : n - 1; j < n; ++j) rows.push_back(row + j);
    row += n;
    out.row_begin.push_back(static_cast<int64_t>(rows.size()));
  }
  Tensor selected = Tensor::empty({static_cast<int64_t>(rows.size()), c.hidden_size}, DType::f32);
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy_n(hidden.data<float>() + rows[r] * c.hidden_size, c.hidden_size,
                selected.data<float>() + static_cast<int64_t>(r) * c.hidden_size);
  ops::rms_norm(selected, final_norm_, static_cast<float>(c.rms_norm_eps), selected);
  out.logits = Tensor::empty({selected.dim(0), c.vocab_size}, DType::f32);
  ops::linear(selected, lm_head_, nullptr, out.logits);
  return out;
}

}  // namespace lattice
