#include "planner/cost_model.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice::planner {

const char* term_name(Term term) {
  switch (term) {
    case Term::weights: return "weights bandwidth";
    case Term::kv: return "KV bandwidth";
    case Term::compute: return "compute";
    case Term::activations: return "activation bandwidth";
    case Term::launch: return "launch overhead";
    case Term::all_reduce: return "all-reduce";
    case Term::pipeline: return "pipeline bubble";
  }
  return "?";
}

double Breakdown::total() const {
  double t = 0;
  for (double s : seconds) t += s;
  return t;
}

Term Breakdown::largest() const {
  return static_cast<Term>(std::max_element(seconds, seconds + kNumTerms) - seconds);
}

void Breakdown::add(const Breakdown& other, double times) {
  for (int i = 0; i < kNumTerms; ++i) seconds[i] += times * other.seconds[i];
}

OpCost cost_op(OpCost op, const HardwareProfile& hw) {
  const double bytes = op.weight_bytes + op.kv_bytes + op.other_bytes;
  const double memory_s = bytes / hw.bandwidth(op.kind);
  const double compute_s = op.flops / hw.flops(op.kind);
  const double launch_s = static_cast<double>(op.launches) * hw.launch_overhead_us * 1e-6;
  op.breakdown = {};
  if (compute_s > memory_s) {
    op.breakdown[Term::compute] = compute_s;
  } else if (bytes > 0) {  // memory bound: the time splits over what was moved
    op.breakdown[Term::weights] = memory_s * op.weight_bytes / bytes;
    op.breakdown[Term::kv] = memory_s * op.kv_bytes / bytes;
    op.breakdown[Term::activations] = memory_s * op.other_bytes / bytes;
  }
  op.breakdown[Term::launch] = launch_s;
  op.seconds = op.breakdown.total();
  return op;
}

double ring_all_reduce_seconds(double bytes, int ranks, const Link& link) {
  if (ranks <= 1) return 0;
  const double n = ranks;
  return 2 * (n - 1) / n * bytes / (link.bus_gbps * 1e9) + 2 * (n - 1) * link.latency_us * 1e-6;
}

double gather_seconds(double bytes, int ranks, const Link& link) {
  if (ranks <= 1) return 0;
  return (ranks - 1) * (bytes / (link.bus_gbps * 1e9) + link.latency_us * 1e-6);
}

double send_seconds(double bytes, const Link& link) { return bytes / (link.bus_gbps * 1e9) + link.latency_us * 1e-6; }

StageCost stage_step_cost(const ModelConfig& c, const StageStep& step, const HardwareProfile& hw, const Link& tp_link) {
  LATTICE_CHECK(step.tp >= 1 && c.num_heads % step.tp == 0, "tp ", step.tp, " does not divide ", c.num_heads, " heads");
  const double e = static_cast<double>(step.dtype_bytes);
  const double H = static_cast<double>(c.hidden_size), d = static_cast<double>(c.head_dim);
  const double heads = static_cast<double>(c.num_heads / step.tp);
  // The kv_heads split rule (parallel/sharding.h): evenly when tp divides them, else one KV head per rank.
  const double kv_heads = static_cast<double>(c.num_kv_heads % step.tp == 0 ? c.num_kv_heads / step.tp : 1);
  const double inter = static_cast<double>(c.intermediate_size / step.tp);
  const double vocab = static_cast<double>(c.vocab_size / step.tp);
  const double L = static_cast<double>(step.layers);
  double n = 0, rows = 0, attended = 0, kv_positions = 0;  // tokens; logit rows; (query, key) pairs; K/V read
  bool decode = true;
  for (const SeqShape& s : step.seqs) {
    const double q = static_cast<double>(s.new_tokens), past = static_cast<double>(s.cached);
    n += q;
    rows += 1;  // the engine computes logits for each sequence's last row
    attended += q * past + q * (q + 1) / 2;  // causal: row j sees past + j + 1 positions
    kv_positions += past + q;
    decode = decode && s.new_tokens == 1;
  }
  StageCost out;
  auto add = [&](OpCost op) { out.ops.push_back(cost_op(std::move(op), hw)); };
  // A GEMM x [m, k] . W[n_out, k]^T: reads W and x, writes the output.
  auto gemm = [&](const char* name, double m, double n_out, double k, double times) {
    add({name, OpKind::gemm, times * n_out * k * e, 0, times * (m * k + m * n_out) * e, times * 2 * m * n_out * k,
         static_cast<int64_t>(times), 0, {}});
  };
  auto elementwise = [&](const char* name, double bytes, double flops, double times) {
    add({name, OpKind::elementwise, 0, 0, times * bytes, times * flops, static_cast<int64_t>(times), 0, {}});
  };
  const double qkv_out = (heads + 2 * kv_heads) * d;
  if (step.first) {
    elementwise("embedding", 2 * n * H * e, 0, 1);
  }
  if (L > 0) {
    // Layer norms: the stage's first layer runs rms_norm (read x, write x), the rest add_rms_norm (read the
    // residual and the pending MLP output, write both); norm weights are H each.
    elementwise("rms_norm", 2 * n * H * e + H * e, 4 * n * H, 1);
    elementwise("add_rms_norm", 4 * n * H * e + H * e, 5 * n * H, 2 * L - 1);
    gemm("qkv_proj", n, qkv_out, H, L);
    elementwise("rope_write_kv", n * qkv_out * e + n * heads * d * e + 2 * n * kv_heads * d * e,
                6 * n * (heads + kv_heads) * d, L);
    add({decode ? "attention_decode" : "attention_prefill", decode ? OpKind::attention_decode : OpKind::attention_prefill,
         0, L * kv_positions * 2 * kv_heads * d * e, L * 2 * n * heads * d * e, L * 4 * attended * heads * d,
         static_cast<int64_t>(L), 0, {}});
    gemm("o_proj", n, H, heads * d, L);
    gemm("gate_up_proj", n, 2 * inter, H, L);
    elementwise("silu_mul", 3 * n * inter * e, 5 * n * inter, L);
    gemm("down_proj", n, H, inter, L);
    elementwise("add (last MLP output)", 3 * n * H * e, n * H, 1);
  }
  if (step.last) {
    elementwise("gather_rows", 2 * rows * H * e, 0, 1);
    elementwise("final rms_norm", 2 * rows * H * e + H * e, 4 * rows * H, 1);
    gemm("lm_head", rows, vocab, H, 1);
    elementwise("logits to sampler", rows * c.vocab_size * 4.0, 0, 1);
  }
  // Collectives: after o_proj and down_proj in every layer, and after the vocabulary-parallel embedding.
  Breakdown comm;
  if (step.tp > 1) {
    const double reduces = 2 * L + (step.first ? 1 : 0);
    comm[Term::all_reduce] = reduces * ring_all_reduce_seconds(n * H * e, step.tp, tp_link);
    if (step.last) comm[Term::all_reduce] += gather_seconds(rows * vocab * 4, step.tp, tp_link);
  }
  for (const OpCost& op : out.ops) out.breakdown.add(op.breakdown);
  out.breakdown.add(comm);
  return out;
}

}  // namespace lattice::planner
