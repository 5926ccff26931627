#include "models/llama.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/ops/ops.h"

namespace lattice {

std::unique_ptr<LlamaModel> LlamaModel::load(const std::string& dir, const ModelPartition& partition,
                                             parallel::Communicator* tp_comm, WeightLoader::Progress progress) {
  LATTICE_CHECK(std::filesystem::is_directory(dir), "model directory '", dir, "' does not exist");
  ModelConfig config = ModelConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  Checkpoint checkpoint = Checkpoint::open(dir);
  return std::make_unique<LlamaModel>(std::move(config), checkpoint, partition, tp_comm, std::move(progress));
}

LlamaModel::LlamaModel(ModelConfig config, const Checkpoint& checkpoint, const ModelPartition& partition,
                       parallel::Communicator* tp_comm, WeightLoader::Progress progress)
    : config_(std::move(config)), part_(partition), tp_comm_(tp_comm) {
  const ModelConfig& c = config_;
  const int tp = part_.tp.size;
  if (part_.layer_end < 0) part_.layer_end = c.num_layers;
  LATTICE_CHECK(0 <= part_.layer_begin && part_.layer_begin < part_.layer_end && part_.layer_end <= c.num_layers,
                "layer range [", part_.layer_begin, ", ", part_.layer_end, ") is not inside the model's ",
                c.num_layers, " layers");
  LATTICE_CHECK(tp == 1 || (tp_comm_ && tp_comm_->size() == tp), "tp=", tp, " needs a TP communicator of ", tp,
                " ranks");
  LATTICE_CHECK(c.num_heads % tp == 0, "cannot split ", c.num_heads, " attention heads over tp=", tp);
  heads_ = c.num_heads / tp;
  kv_heads_ = c.num_kv_heads % tp == 0 ? c.num_kv_heads / tp : 1;  // else replicated (checked by the split rule)
  const bool last_stage = part_.layer_end == c.num_layers;
  shape_ = {c.vocab_size, c.max_position_embeddings, c.hidden_size,
            {part_.layer_end - part_.layer_begin, kv_heads_, c.head_dim, 16}};

  std::vector<WeightRef> wanted;
  const std::vector<WeightSpec> table = llama_weight_table(c);
  if (part_.has_embedding()) wanted.push_back({"model.embed_tokens.weight"});
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l)
    for (const WeightSpec& s : table)
      if (s.per_layer && !(s.split == SplitRule::replicated && s.pattern.ends_with("o_proj.bias") && part_.tp.rank != 0))
        wanted.push_back({s.pattern, l});
  if (last_stage) {
    wanted.push_back({"model.norm.weight"});
    wanted.push_back({c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"});
  }
  WeightLoader w(checkpoint, table, c.num_layers, c.num_kv_heads, part_.tp, wanted, std::move(progress));
  if (part_.has_embedding()) embed_ = w.load("model.embed_tokens.weight");
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l) {
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
    // Row-parallel o_proj: the bias joins the partial sums on one rank only, so the all-reduce adds it once.
    if (c.o_bias && part_.tp.rank == 0) layer.bo = w.load("model.layers.{layer}.self_attn.o_proj.bias", l);
    layer.post_norm = w.load("model.layers.{layer}.post_attention_layernorm.weight", l);
    layer.w_gate = w.load("model.layers.{layer}.mlp.gate_proj.weight", l);
    layer.w_up = w.load("model.layers.{layer}.mlp.up_proj.weight", l);
    layer.w_down = w.load("model.layers.{layer}.mlp.down_proj.weight", l);
    layers_.push_back(std::move(layer));
  }
  if (last_stage) {
    final_norm_ = w.load("model.norm.weight");
    lm_head_ = c.tie_word_embeddings && part_.has_embedding() ? embed_
                                                               : w.load(c.tie_word_embeddings ? "model.embed_tokens.weight"
                                                                                              : "lm_head.weight");
  }
  inv_freq_ = Tensor::from_vector(c.rope_inv_freq(), {c.head_dim / 2});
  bytes_read_ = w.bytes_read();
}

void LlamaModel::all_reduce(Tensor& t) const {
  if (part_.tp.size > 1) tp_comm_->all_reduce_sum(t);
}

void LlamaModel::validate(const StepBatch& batch, const KvCache& cache) const {
  LATTICE_CHECK(!batch.seqs.empty(), "a step needs at least one sequence");
  LATTICE_CHECK(cache.shape().layers == shape_.kv.layers && cache.shape().kv_heads == kv_heads_ &&
                    cache.shape().head_dim == config_.head_dim,
                "KV cache (", cache.shape().layers, " layers, ", cache.shape().kv_heads, " heads of ",
                cache.shape().head_dim, ") does not fit this model (", shape_.kv.layers, " layers, ", kv_heads_,
                " heads of ", config_.head_dim, ")");
  for (const SequenceStep& s : batch.seqs)
    LATTICE_CHECK(s.context_len() <= config_.max_position_embeddings, "sequence ", s.seq_id, " reaches position ",
                  s.context_len(), ", past the model's ", config_.max_position_embeddings, " positions");
}

Tensor LlamaModel::embed(const StepBatch& batch) {
  LATTICE_CHECK(part_.has_embedding(), "embed() runs on the first pipeline stage only");
  std::vector<int32_t> ids;
  for (const SequenceStep& s : batch.seqs)
    for (int32_t t : s.tokens) {
      LATTICE_CHECK(t >= 0 && t < config_.vocab_size, "sequence ", s.seq_id, ": token id ", t,
                    " is out of range for vocabulary size ", config_.vocab_size);
      ids.push_back(t);
    }
  const int64_t tokens = static_cast<int64_t>(ids.size());
  Tensor hidden = Tensor::empty({tokens, config_.hidden_size}, DType::f32);
  // Vocabulary-parallel: each rank fills the rows of its ids, zeros elsewhere; the all-reduce completes them.
  ops::embedding(embed_, Tensor::from_vector(ids, {tokens}), part_.tp.rank * embed_.dim(0), hidden);
  all_reduce(hidden);
  return hidden;
}

void LlamaModel::run_layer(int64_t l, Tensor& hidden, const Tensor& positions, const ops::AttentionMetadata& meta,
                           KvCache& cache) const {
  const int64_t local = l - part_.layer_begin;
  const LlamaLayer& w = layers_[local];
  const ModelConfig& c = config_;
  const int64_t tokens = hidden.dim(0);
  const float eps = static_cast<float>(c.rms_norm_eps);
  auto opt = [](const Tensor& t) { return t.defined() ? &t : nullptr; };

  Tensor x = Tensor::empty(hidden.shape(), DType::f32);
  ops::rms_norm(hidden, w.input_norm, eps, x);
  Tensor q = Tensor::empty({tokens, heads_ * c.head_dim}, DType::f32);
  Tensor k = Tensor::empty({tokens, kv_heads_ * c.head_dim}, DType::f32);
  Tensor v = Tensor::empty({tokens, kv_heads_ * c.head_dim}, DType::f32);
  ops::linear(x, w.wq, opt(w.bq), q);
  ops::linear(x, w.wk, opt(w.bk), k);
  ops::linear(x, w.wv, opt(w.bv), v);
  Tensor q3 = q.reshape({tokens, heads_, c.head_dim});
  Tensor k3 = k.reshape({tokens, kv_heads_, c.head_dim});
  Tensor v3 = v.reshape({tokens, kv_heads_, c.head_dim});
  ops::rope_(q3, positions, inv_freq_);
  ops::rope_(k3, positions, inv_freq_);
  Tensor attn = Tensor::empty(q3.shape(), DType::f32);
  ops::paged_attention(q3, k3, v3, meta, cache.k(local), cache.v(local),
                       static_cast<float>(1.0 / std::sqrt(c.head_dim)), attn);
  ops::linear(attn.reshape({tokens, heads_ * c.head_dim}), w.wo, opt(w.bo), x);
  all_reduce(x);
  ops::add_(hidden, x);

  ops::rms_norm(hidden, w.post_norm, eps, x);
  Tensor gate = Tensor::empty({tokens, w.w_gate.dim(0)}, DType::f32);
  Tensor up = Tensor::empty({tokens, w.w_up.dim(0)}, DType::f32);
  ops::linear(x, w.w_gate, nullptr, gate);
  ops::linear(x, w.w_up, nullptr, up);
  ops::silu_mul(gate, up, gate);
  ops::linear(gate, w.w_down, nullptr, x);
  all_reduce(x);
  ops::add_(hidden, x);
}

void LlamaModel::run_layers(Tensor& hidden, const StepBatch& batch, KvCache& cache) {
  validate(batch, cache);
  LATTICE_CHECK(hidden.rank() == 2 && hidden.dim(0) == batch.num_tokens() && hidden.dim(1) == config_.hidden_size,
                "hidden ", hidden.describe(), " does not match ", batch.num_tokens(), " tokens x ", config_.hidden_size);
  std::vector<int32_t> positions;
  for (const SequenceStep& s : batch.seqs)
    for (size_t j = 0; j < s.tokens.size(); ++j)
      positions.push_back(static_cast<int32_t>(s.start_pos + static_cast<int64_t>(j)));
  const Tensor positions_t = Tensor::from_vector(positions, {hidden.dim(0)});
  const ops::AttentionMetadata meta(batch, cache.shape().block_size, cache.num_blocks());
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l) run_layer(l, hidden, positions_t, meta, cache);
}

StepOutput LlamaModel::head(const Tensor& hidden, const StepBatch& batch) {
  LATTICE_CHECK(lm_head_.defined(), "head() runs on the last pipeline stage only");
  const ModelConfig& c = config_;
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
  const int64_t r_count = static_cast<int64_t>(rows.size());
  Tensor selected = Tensor::empty({r_count, c.hidden_size}, DType::f32);
  for (int64_t r = 0; r < r_count; ++r)
    std::memcpy(selected.data<float>() + r * c.hidden_size, hidden.data<float>() + rows[r] * c.hidden_size,
                sizeof(float) * c.hidden_size);
  ops::rms_norm(selected, final_norm_, static_cast<float>(c.rms_norm_eps), selected);
  const int64_t shard = lm_head_.dim(0);
  Tensor local = Tensor::empty({r_count, shard}, DType::f32);
  ops::linear(selected, lm_head_, nullptr, local);
  if (part_.tp.size == 1) {
    out.logits = local;
    return out;
  }
  // Column-parallel over the vocabulary: gather [tp, rows, shard] and interleave into [rows, vocab].
  Tensor gathered = Tensor::empty({part_.tp.size, r_count, shard}, DType::f32);
  tp_comm_->all_gather(local, gathered);
  out.logits = Tensor::empty({r_count, c.vocab_size}, DType::f32);
  for (int64_t p = 0; p < part_.tp.size; ++p)
    for (int64_t r = 0; r < r_count; ++r)
      std::memcpy(out.logits.data<float>() + r * c.vocab_size + p * shard,
                  gathered.data<float>() + (p * r_count + r) * shard, sizeof(float) * shard);
  return out;
}

}  // namespace lattice
