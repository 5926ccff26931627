#include "planner/memory_plan.h"

#include "engine/core/error.h"
#include "engine/ops/attention.h"

namespace lattice::planner {

namespace {

int64_t local_kv_heads(const ModelConfig& c, int tp) { return c.num_kv_heads % tp == 0 ? c.num_kv_heads / tp : 1; }

// The buffers LlamaModel::reserve(max_tokens) allocates (models/llama.cc), which has no size query of its own.
double activation_bytes(const ModelConfig& c, int tp, bool has_layers, bool last, int64_t max_tokens, DType dtype) {
  const double t = static_cast<double>(max_tokens), e = static_cast<double>(dtype_size(dtype));
  const double heads = static_cast<double>(c.num_heads / tp), kv = static_cast<double>(local_kv_heads(c, tp));
  const double inter = static_cast<double>(c.intermediate_size / tp), H = static_cast<double>(c.hidden_size);
  double bytes = 2 * t * H * e;  // x, pending
  if (has_layers)                // qkv, q, attn, gate_up, act
    bytes += t * ((heads + 2 * kv) * c.head_dim + 2 * heads * c.head_dim + 3 * inter) * e;
  if (last) {
    bytes += t * H * e;  // selected
    if (tp > 1) bytes += t * (c.vocab_size / tp) * 4.0 * (1 + tp);  // local logits, and rank 0's gathered parts
  }
  return bytes;
}

}  // namespace

double shard_weight_bytes(const ModelConfig& c, int tp, int64_t layers, bool first, bool last, DType dtype) {
  const double e = static_cast<double>(dtype_size(dtype)), H = static_cast<double>(c.hidden_size);
  const double heads = static_cast<double>(c.num_heads / tp), kv = static_cast<double>(local_kv_heads(c, tp));
  const double d = static_cast<double>(c.head_dim), inter = static_cast<double>(c.intermediate_size / tp);
  double per_layer = (heads + 2 * kv) * d * H + H * heads * d + 2 * inter * H + H * inter + 2 * H;
  if (c.qkv_bias) per_layer += (heads + 2 * kv) * d;
  if (c.o_bias) per_layer += H;  // on TP rank 0, the largest rank
  double params = static_cast<double>(layers) * per_layer;
  const double vocab_shard = static_cast<double>(c.vocab_size / tp) * H;
  if (first) params += vocab_shard;
  if (last) params += H + (c.tie_word_embeddings && first ? 0 : vocab_shard);
  return params * e;
}

RankMemory rank_memory(const ModelConfig& c, int tp, int64_t layer_begin, int64_t layer_end, const HardwareProfile& hw,
                       const MemoryOptions& o) {
  const bool first = layer_begin == 0, last = layer_end == c.num_layers;
  RankMemory m;
  m.weight_bytes = shard_weight_bytes(c, tp, layer_end - layer_begin, first, last, o.dtype);
  m.scratch_bytes = static_cast<double>(
      ops::attention_scratch_bytes(o.limits.max_seqs, c.num_heads / tp, c.head_dim, c.max_position_embeddings));
  m.activation_bytes = activation_bytes(c, tp, layer_end > layer_begin, last, o.limits.max_tokens_per_step, o.dtype);
  LmShape shape;
  shape.vocab_size = c.vocab_size;
  shape.max_positions = c.max_position_embeddings;
  shape.hidden_size = c.hidden_size;
  shape.kv = {layer_end - layer_begin, local_kv_heads(c, tp), c.head_dim, o.block_size};
  m.runner_bytes = static_cast<double>(ModelRunner::buffer_bytes(shape, o.dtype, o.limits));
  m.reserved_bytes = hw.reserved_bytes;
  const double used = m.weight_bytes + m.scratch_bytes + m.activation_bytes + m.reserved_bytes;
  const int64_t block_bytes = shape.kv.bytes_per_block(o.dtype);
  if (used > hw.memory_bytes) {
    m.why_not = "weights and workspaces need more than the device's memory";
    return m;
  }
  try {  // the engine's own sizing: what utilization leaves after everything else, in whole blocks
    const size_t total = static_cast<size_t>(hw.memory_bytes);
    const size_t budget = gpu_kv_budget(total, total - static_cast<size_t>(used), o.gpu_memory_utilization,
                                        static_cast<size_t>(m.runner_bytes), block_bytes);
    m.kv_blocks = shape.kv.blocks_in(budget, o.dtype);
  } catch (const Error& e) {
    m.why_not = e.what();
    const size_t where = m.why_not.find(".cc:");  // drop the "kv_cache.cc:22: " prefix the error carries
    if (where != std::string::npos && m.why_not.find(": ", where) != std::string::npos)
      m.why_not = m.why_not.substr(m.why_not.find(": ", where) + 2);
    return m;
  }
  m.kv_bytes = static_cast<double>(m.kv_blocks) * static_cast<double>(block_bytes);
  m.kv_tokens = m.kv_blocks * o.block_size;
  m.fits = true;
  return m;
}

}  // namespace lattice::planner
