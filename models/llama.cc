#include "models/llama.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/ops/attention.h"
#include "engine/ops/layout.h"
#include "engine/ops/op_profile.h"
#include "engine/ops/ops.h"
#include "models/dummy_weights.h"

namespace lattice {

namespace {

constexpr const char* kQ = "model.layers.{layer}.self_attn.q_proj.weight";
constexpr const char* kK = "model.layers.{layer}.self_attn.k_proj.weight";
constexpr const char* kV = "model.layers.{layer}.self_attn.v_proj.weight";
constexpr const char* kQBias = "model.layers.{layer}.self_attn.q_proj.bias";
constexpr const char* kKBias = "model.layers.{layer}.self_attn.k_proj.bias";
constexpr const char* kVBias = "model.layers.{layer}.self_attn.v_proj.bias";
constexpr const char* kOBias = "model.layers.{layer}.self_attn.o_proj.bias";
constexpr const char* kQNorm = "model.layers.{layer}.self_attn.q_norm.weight";
constexpr const char* kKNorm = "model.layers.{layer}.self_attn.k_norm.weight";
constexpr const char* kGate = "model.layers.{layer}.mlp.gate_proj.weight";
constexpr const char* kUp = "model.layers.{layer}.mlp.up_proj.weight";

}  // namespace

std::unique_ptr<LlamaModel> LlamaModel::load(const std::string& dir, const ModelPartition& partition,
                                             parallel::Communicator* tp_comm, const LoadOptions& options,
                                             WeightLoader::Progress progress) {
  LATTICE_CHECK(std::filesystem::is_directory(dir), "model directory '", dir, "' does not exist");
  ModelConfig config = ModelConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  if (options.dummy_weights)
    return std::make_unique<LlamaModel>(std::move(config), DummyWeights(options.dtype), partition, tp_comm, options,
                                        std::move(progress));
  const Checkpoint checkpoint = Checkpoint::open(dir);
  return std::make_unique<LlamaModel>(std::move(config), CheckpointWeights(checkpoint), partition, tp_comm, options,
                                      std::move(progress));
}

LlamaModel::LlamaModel(ModelConfig config, const WeightSource& weights, const ModelPartition& partition,
                       parallel::Communicator* tp_comm, const LoadOptions& options, WeightLoader::Progress progress)
    : config_(std::move(config)), part_(partition), tp_comm_(tp_comm), dtype_(options.dtype), exec_(options.exec) {
  const ModelConfig& c = config_;
  const int tp = part_.tp.size;
  if (part_.layer_end < 0) part_.layer_end = c.num_layers;
  LATTICE_CHECK(0 <= part_.layer_begin && part_.layer_begin < part_.layer_end && part_.layer_end <= c.num_layers,
                "layer range [", part_.layer_begin, ", ", part_.layer_end, ") is not inside the model's ",
                c.num_layers, " layers");
  LATTICE_CHECK(tp == 1 || (tp_comm_ && tp_comm_->size() == tp), "tp=", tp, " needs a TP communicator of ", tp,
                " ranks");
  LATTICE_CHECK(c.num_heads % tp == 0, "cannot split ", c.num_heads, " attention heads over tp=", tp);
  LATTICE_CHECK(dtype_ == DType::f32 || !exec_.device.is_cpu(), "the CPU backend computes in f32, not ",
                dtype_name(dtype_), " (use --dtype f32 or auto with --device cpu)");
  heads_ = c.num_heads / tp;
  kv_heads_ = c.num_kv_heads % tp == 0 ? c.num_kv_heads / tp : 1;  // else replicated (checked by the split rule)
  const bool last_stage = part_.layer_end == c.num_layers;
  sliding_window_ = c.sliding_window;
  shape_ = {c.vocab_size,
            c.max_position_embeddings,
            c.hidden_size,
            {part_.layer_end - part_.layer_begin, kv_heads_, c.head_dim, 16},
            c.sliding_window};

  LATTICE_CHECK(!part_.expert_parallel || c.is_moe(), "expert parallelism needs a mixture-of-experts model; ",
                c.architecture, " has no experts");
  if (c.is_moe()) {
    experts_ = owned_experts(c, part_.tp, part_.expert_parallel);
    moe_ = SparseMoe(c, experts_);
  }

  std::vector<WeightRef> wanted;
  const std::vector<WeightSpec> table = llama_weight_table(c, part_.expert_parallel);
  if (part_.has_embedding()) wanted.push_back({"model.embed_tokens.weight"});
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l)
    for (const WeightSpec& s : table)
      if (s.per_layer && (s.expert < 0 || experts_.contains(s.expert))) wanted.push_back({s.pattern, l});
  if (last_stage) {
    wanted.push_back({"model.norm.weight"});
    wanted.push_back({c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"});
  }
  WeightLoader w(weights, table, c.num_layers, c.num_kv_heads, part_.tp, wanted, std::move(progress));
  const DType t = dtype_;
  const Device d = exec_.device;
  if (part_.has_embedding()) embed_ = w.load("model.embed_tokens.weight", -1, t, d);
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l) {
    LlamaLayer layer;
    layer.input_norm = w.load("model.layers.{layer}.input_layernorm.weight", l, t, d);
    layer.wqkv = w.load_fused({kQ, kK, kV}, l, t, d);
    if (c.qkv_bias) layer.bqkv = w.load_fused({kQBias, kKBias, kVBias}, l, t, d);
    if (c.qk_norm) {
      layer.q_norm = w.load(kQNorm, l, t, d);
      layer.k_norm = w.load(kKNorm, l, t, d);
    }
    layer.wo = w.load("model.layers.{layer}.self_attn.o_proj.weight", l, t, d);
    // Row-parallel o_proj: its bias is held by TP rank 0 only (the first_rank split rule), so the all-reduce
    // adds it once; elsewhere load() gives an undefined tensor.
    if (c.o_bias) layer.bo = w.load(kOBias, l, t, d);
    layer.post_norm = w.load("model.layers.{layer}.post_attention_layernorm.weight", l, t, d);
    if (c.is_moe()) {
      layer.moe = load_moe_layer(w, c, l, experts_, t, d);
    } else {
      layer.w_gate_up = w.load_fused({kGate, kUp}, l, t, d);
      layer.w_down = w.load("model.layers.{layer}.mlp.down_proj.weight", l, t, d);
    }
    layers_.push_back(std::move(layer));
  }
  if (last_stage) {
    final_norm_ = w.load("model.norm.weight", -1, t, d);
    lm_head_ = c.tie_word_embeddings && part_.has_embedding()
                   ? embed_
                   : w.load(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", -1, t, d);
  }
  inv_freq_ = Tensor::from_vector(c.rope_inv_freq(), {c.head_dim / 2}).to(d);
  bytes_read_ = w.bytes_read();
}

void LlamaModel::reserve(int64_t max_tokens) {
  if (buf_.capacity >= max_tokens) return;
  const ModelConfig& c = config_;
  const Device d = exec_.device;
  const int64_t inter = layers_.empty() || c.is_moe() ? 0 : layers_.front().w_down.dim(1);
  auto make = [&](std::initializer_list<int64_t> shape, DType dtype) {
    return Tensor::empty(std::vector<int64_t>(shape), dtype, d);
  };
  Buffers b;
  b.capacity = max_tokens;
  b.x = make({max_tokens, c.hidden_size}, dtype_);
  b.pending = make({max_tokens, c.hidden_size}, dtype_);
  if (!layers_.empty()) {
    b.qkv = make({max_tokens, (heads_ + 2 * kv_heads_) * c.head_dim}, dtype_);
    b.q = make({max_tokens, heads_, c.head_dim}, dtype_);
    b.attn = make({max_tokens, heads_, c.head_dim}, dtype_);
    b.gate_up = make({max_tokens, 2 * inter}, dtype_);
    b.act = make({max_tokens, inter}, dtype_);
  }
  if (lm_head_.defined()) {
    b.selected = make({max_tokens, c.hidden_size}, dtype_);
    if (part_.tp.size > 1) {
      b.local_logits = make({max_tokens, lm_head_.dim(0)}, DType::f32);
      if (part_.tp.rank == 0) b.gathered = make({part_.tp.size * max_tokens * lm_head_.dim(0)}, DType::f32);
    }
  }
  buf_ = std::move(b);
  if (c.is_moe() && !layers_.empty())
    moe_.reserve(max_tokens, layers_.front().moe.w_down.front().dim(1), dtype_, d);  // every rank holds >= 1 expert
}

void LlamaModel::all_reduce(const ops::ExecContext& ctx, Tensor& t) const {
  if (part_.tp.size == 1) return;
  ops::OpScope time(ctx, ops::OpKind::communication);
  tp_comm_->all_reduce_sum(t);
}

void LlamaModel::embed(const StepContext& step, Tensor& hidden) {
  LATTICE_CHECK(part_.has_embedding(), "embed() runs on the first pipeline stage only");
  // Vocabulary-parallel: each rank fills the rows of its ids (shards of ceil(vocab / tp), so rank r starts at
  // r * shard), zeros elsewhere; the all-reduce completes them.
  {
    ops::OpScope time(step.exec, ops::OpKind::embedding);
    ops::embedding(step.exec, embed_, step.meta.ids(), part_.tp.rank * embed_.dim(0), hidden);
  }
  all_reduce(step.exec, hidden);
}

void LlamaModel::run_layer(const StepContext& step, int64_t l, Tensor& hidden, bool first, KvCache& cache) {
  const ops::ExecContext& ctx = step.exec;
  const int64_t local = l - part_.layer_begin;
  const LlamaLayer& w = layers_[static_cast<size_t>(local)];
  const ModelConfig& c = config_;
  const int64_t n = hidden.dim(0);
  const float eps = static_cast<float>(c.rms_norm_eps);
  auto opt = [](const Tensor& t) { return t.defined() ? &t : nullptr; };
  Tensor x = buf_.x.rows(0, n), pending = buf_.pending.rows(0, n), qkv = buf_.qkv.rows(0, n);
  Tensor q = buf_.q.rows(0, n), attn = buf_.attn.rows(0, n), gate_up = buf_.gate_up.rows(0, n);
  Tensor act = buf_.act.rows(0, n);

  using ops::OpKind, ops::OpScope;

  {
    OpScope time(ctx, OpKind::norm);
    if (first)
      ops::rms_norm(ctx, hidden, w.input_norm, eps, x);
    else
      ops::add_rms_norm(ctx, pending, hidden, w.input_norm, eps, x);  // the previous layer's MLP joins the residual
  }
  {
    OpScope time(ctx, OpKind::qkv_proj, ops::linear_flops(x, w.wqkv));
    ops::linear(ctx, x, w.wqkv, opt(w.bqkv), qkv);
  }
  if (c.qk_norm) {  // Qwen3: each q and k head RMS-normalised before RoPE, in place in the fused output
    OpScope time(ctx, OpKind::norm);
    ops::head_rms_norm(ctx, qkv, 0, heads_, w.q_norm, eps);
    ops::head_rms_norm(ctx, qkv, heads_ * c.head_dim, kv_heads_, w.k_norm, eps);
  }
  {
    OpScope time(ctx, OpKind::rope_kv);
    ops::rope_write_kv(ctx, qkv, step.meta.positions(), inv_freq_, step.meta.slots(), cache.k(local),
                       cache.v(local), q);
  }
  {
    // QK^T and PV over every visible (query, key) pair of every head (a sliding window not counted).
    OpScope time(ctx, OpKind::attention, 4.0 * step.meta.attention_pairs() * heads_ * c.head_dim);
    ops::AttentionInputs attention = step.meta.attention();
    attention.sliding_window = sliding_window_;
    ops::paged_attention(ctx, q, cache.k(local), cache.v(local), attention,
                         static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), attn);
  }
  {
    const Tensor attn_rows = attn.reshape({n, heads_ * c.head_dim});
    OpScope time(ctx, OpKind::o_proj, ops::linear_flops(attn_rows, w.wo));
    ops::linear(ctx, attn_rows, w.wo, opt(w.bo), pending);
  }
  all_reduce(ctx, pending);
  {
    OpScope time(ctx, OpKind::norm);
    ops::add_rms_norm(ctx, pending, hidden, w.post_norm, eps, x);
  }
  if (c.is_moe()) {
    moe_.forward(ctx, w.moe, x, pending);
  } else {
    {
      OpScope time(ctx, OpKind::gate_up_proj, ops::linear_flops(x, w.w_gate_up));
      ops::linear(ctx, x, w.w_gate_up, nullptr, gate_up);
    }
    {
      OpScope time(ctx, OpKind::activation);
      ops::silu_mul(ctx, gate_up, act);
    }
    OpScope time(ctx, OpKind::down_proj, ops::linear_flops(act, w.w_down));
    ops::linear(ctx, act, w.w_down, nullptr, pending);
  }
  all_reduce(ctx, pending);
}

void LlamaModel::run_layers(const StepContext& step, Tensor& hidden, KvCache& cache) {
  const int64_t n = step.meta.num_tokens();
  LATTICE_CHECK(cache.shape().layers == shape_.kv.layers && cache.shape().kv_heads == kv_heads_ &&
                    cache.shape().head_dim == config_.head_dim,
                "KV cache (", cache.shape().layers, " layers, ", cache.shape().kv_heads, " heads of ",
                cache.shape().head_dim, ") does not fit this model (", shape_.kv.layers, " layers, ", kv_heads_,
                " heads of ", config_.head_dim, ")");
  LATTICE_CHECK(hidden.rank() == 2 && hidden.dim(0) == n && hidden.dim(1) == config_.hidden_size, "hidden ",
                hidden.describe(), " does not match ", n, " tokens x ", config_.hidden_size);
  LATTICE_CHECK(n <= buf_.capacity, "a step of ", n, " tokens needs reserve(", n, "); reserved ", buf_.capacity);
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l) run_layer(step, l, hidden, l == part_.layer_begin, cache);
  ops::OpScope time(step.exec, ops::OpKind::norm);  // the residual add, which the next norm would otherwise fuse
  ops::add_(step.exec, hidden, buf_.pending.rows(0, n));  // the stage's last MLP output
}

bool LlamaModel::head(const StepContext& step, const Tensor& hidden, Tensor& logits) {
  LATTICE_CHECK(lm_head_.defined(), "head() runs on the last pipeline stage only");
  const ops::ExecContext& ctx = step.exec;
  const int64_t rows = step.meta.num_logit_rows();
  LATTICE_CHECK(rows <= buf_.capacity, "head of ", rows, " rows needs reserve(", rows, "); reserved ", buf_.capacity);
  // Only the rows whose logits are wanted go through the final norm and the lm_head.
  ops::OpScope time(ctx, ops::OpKind::lm_head, ops::linear_flops(buf_.selected.rows(0, rows), lm_head_));
  Tensor selected = buf_.selected.rows(0, rows);
  ops::gather_rows(ctx, hidden, step.meta.logit_rows(), selected);
  ops::rms_norm(ctx, selected, final_norm_, static_cast<float>(config_.rms_norm_eps), selected);
  if (part_.tp.size == 1) {
    ops::linear(ctx, selected, lm_head_, nullptr, logits);
    return true;
  }
  // Column-parallel over the vocabulary: TP rank 0 gathers [tp, rows, shard] and lays it out as [rows, vocab],
  // leaving out the last shards' padding columns (past the vocabulary), so they are never sampled.
  const int64_t shard = lm_head_.dim(0), vocab = config_.vocab_size;
  Tensor local = buf_.local_logits.rows(0, rows);
  ops::linear(ctx, selected, lm_head_, nullptr, local);
  Tensor gathered = part_.tp.rank == 0 ? buf_.gathered.rows(0, part_.tp.size * rows * shard) : Tensor();
  tp_comm_->gather(local, gathered, 0);
  if (part_.tp.rank != 0) return false;
  const Tensor parts = gathered.reshape({part_.tp.size, rows, shard});
  for (int64_t p = 0; p < part_.tp.size; ++p)
    ops::copy_columns(ctx, parts.rows(p, p + 1).reshape({rows, shard}), logits, std::min(p * shard, vocab),
                      std::clamp(vocab - p * shard, int64_t{0}, shard));
  return true;
}

}  // namespace lattice
