#include "models/sparse_moe.h"

#include "engine/ops/moe.h"
#include "engine/ops/op_profile.h"
#include "engine/ops/ops.h"

namespace lattice {

ExpertRange owned_experts(const ModelConfig& c, TensorParallelRank tp, bool expert_parallel) {
  if (!expert_parallel) return {0, c.num_experts};
  LATTICE_CHECK(c.num_experts % tp.size == 0, "expert parallelism cannot split ", c.num_experts,
                " experts evenly over the ", tp.size, " ranks of the TP group (num_experts must be divisible by tp)");
  const int64_t share = c.num_experts / tp.size;
  return {tp.rank * share, (tp.rank + 1) * share};
}

MoeLayer load_moe_layer(WeightLoader& w, const ModelConfig& c, int64_t layer, ExpertRange experts, DType dtype,
                        Device device) {
  MoeLayer m;
  m.router = w.load(moe_router_pattern(c), layer, dtype, device);
  for (int64_t e = experts.begin; e < experts.end; ++e) {
    m.w_gate_up.push_back(w.load_fused(
        {moe_expert_pattern(c, e, ExpertProj::gate), moe_expert_pattern(c, e, ExpertProj::up)}, layer, dtype, device));
    m.w_down.push_back(w.load(moe_expert_pattern(c, e, ExpertProj::down), layer, dtype, device));
  }
  return m;
}

void SparseMoe::reserve(int64_t max_tokens, int64_t expert_inter, DType dtype, Device device) {
  const int64_t k = top_k_, slots = max_tokens * k, h = hidden_;
  capacity_ = max_tokens;
  logits_ = Tensor::empty({max_tokens, num_experts_}, DType::f32, device);
  ids_ = Tensor::empty({max_tokens, k}, DType::i32, device);
  weights_ = Tensor::empty({max_tokens, k}, DType::f32, device);
  positions_ = Tensor::empty({max_tokens, k}, DType::i32, device);
  rows_ = Tensor::empty({slots}, DType::i32, device);
  offsets_ = Tensor::empty({experts_.size() + 1}, DType::i64, device);
  xs_ = Tensor::empty({slots, h}, dtype, device);
  gate_up_ = Tensor::empty({slots, 2 * expert_inter}, dtype, device);
  act_ = Tensor::empty({slots, expert_inter}, dtype, device);
  expert_out_ = Tensor::empty({slots, h}, dtype, device);
}

void SparseMoe::forward(const ops::ExecContext& ctx, const MoeLayer& layer, const Tensor& x, Tensor& out) {
  const int64_t n = x.dim(0), k = top_k_;
  LATTICE_CHECK(n <= capacity_, "a MoE step of ", n, " tokens needs reserve(", n, "); reserved ", capacity_);
  Tensor logits = logits_.rows(0, n), ids = ids_.rows(0, n), weights = weights_.rows(0, n);
  Tensor positions = positions_.rows(0, n), rows = rows_.rows(0, n * k);
  using ops::OpKind, ops::OpScope;
  std::vector<int64_t> offsets;
  {
    // Router logits in f32 (the half types round only the inputs), then softmax / top-k on every rank alike.
    OpScope time(ctx, OpKind::moe_routing, ops::linear_flops(x, layer.router));
    ops::linear(ctx, x, layer.router, nullptr, logits);
    ops::moe_route(ctx, logits, renormalize_, ids, weights);
    offsets = ops::moe_group(ctx, ids, experts_.begin, experts_.end, rows, positions, offsets_);
  }
  const int64_t slots = offsets.back();
  Tensor xs = xs_.rows(0, slots), gate_up = gate_up_.rows(0, slots), act = act_.rows(0, slots);
  Tensor expert_out = expert_out_.rows(0, slots);
  // One GEMM per active expert over its contiguous slots, for gate/up and for down (each expert's shard has the
  // same shape, so the FLOPs are those of one product over every slot).
  {
    OpScope time(ctx, OpKind::gate_up_proj, ops::linear_flops(xs, layer.w_gate_up.front()));
    ops::gather_rows(ctx, x, rows.rows(0, slots), xs);
    for (int64_t e = 0; e < experts_.size(); ++e) {
      if (offsets[e + 1] == offsets[e]) continue;
      Tensor part = gate_up.rows(offsets[e], offsets[e + 1]);
      ops::linear(ctx, xs.rows(offsets[e], offsets[e + 1]), layer.w_gate_up[static_cast<size_t>(e)], nullptr, part);
    }
  }
  {
    OpScope time(ctx, OpKind::activation);
    ops::silu_mul(ctx, gate_up, act);
  }
  {
    OpScope time(ctx, OpKind::down_proj, ops::linear_flops(act, layer.w_down.front()));
    for (int64_t e = 0; e < experts_.size(); ++e) {
      if (offsets[e + 1] == offsets[e]) continue;
      Tensor part = expert_out.rows(offsets[e], offsets[e + 1]);
      ops::linear(ctx, act.rows(offsets[e], offsets[e + 1]), layer.w_down[static_cast<size_t>(e)], nullptr, part);
    }
  }
  OpScope time(ctx, OpKind::moe_routing);
  ops::moe_combine(ctx, expert_out, positions, weights, out);
}

}  // namespace lattice
