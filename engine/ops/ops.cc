#include "engine/ops/ops.h"

#include "engine/ops/cuda_ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace lattice::ops {

namespace {

bool is_float(DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; }

uint16_t* half_bits(const Tensor& t) { return static_cast<uint16_t*>(t.raw()); }

// CPU conversion between any two of f32, f16 and bf16: widen to f32 (exact), then narrow (one rounding).
void convert_cpu(const Tensor& in, Tensor& out) {
  const int64_t n = in.numel();
  if (in.dtype() == out.dtype()) {
    out.copy_from(in);
    return;
  }
  const Tensor wide = in.dtype() == DType::f32    ? in
                      : out.dtype() == DType::f32 ? out
                                                  : Tensor::empty({n}, DType::f32);
  float* w = static_cast<float*>(wide.raw());
  if (in.dtype() == DType::bf16) kernels::cpu::bf16_to_f32(half_bits(in), w, n);
  if (in.dtype() == DType::f16) kernels::cpu::f16_to_f32(half_bits(in), w, n);
  if (out.dtype() == DType::bf16) kernels::cpu::f32_to_bf16(w, half_bits(out), n);
  if (out.dtype() == DType::f16) kernels::cpu::f32_to_f16(w, half_bits(out), n);
}

}  // namespace

void embedding(const ExecContext& ctx, const Tensor& table, const Tensor& ids, int64_t first_id, Tensor& out) {
  constexpr const char* op = "embedding";
  require_device(op, ctx, {{"table", table}, {"ids", ids}, {"out", out}});
  require_rank(op, {"table", table}, 2);
  require_dtype(op, {"ids", ids}, DType::i32, 1);
  LATTICE_CHECK(out.rank() == 2 && out.dim(0) == ids.dim(0) && out.dim(1) == table.dim(1), op, ": out ",
                out.describe(), " does not match ", ids.dim(0), " tokens x hidden ", table.dim(1));
  LATTICE_CHECK(out.dtype() == table.dtype() || out.dtype() == DType::f32, op, ": out is ",
                dtype_name(out.dtype()), ", the table is ", dtype_name(table.dtype()), " (out must be that or f32)");
  LATTICE_DISPATCH_OP(op, ctx, table.dtype(),
                      kernels::cpu::embedding_f32(table.data<float>(), first_id, table.dim(0), ids.data<int32_t>(),
                                                  out.data<float>(), ids.dim(0), table.dim(1)),
                      cuda_impl::embedding(ctx, table, ids, first_id, out));
}

void rms_norm(const ExecContext& ctx, const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  constexpr const char* op = "rms_norm";
  require_device(op, ctx, {{"x", x}, {"weight", weight}, {"out", out}});
  require_same_dtype(op, {{"x", x}, {"weight", weight}, {"out", out}});
  require_rank(op, {"x", x}, 2);
  LATTICE_CHECK(weight.numel() == x.dim(1), op, ": weight has ", weight.numel(), " elements, x rows have ", x.dim(1));
  LATTICE_CHECK(out.shape() == x.shape(), op, ": out ", out.describe(), " differs from x ", x.describe());
  LATTICE_DISPATCH_OP(op, ctx, x.dtype(),
                      kernels::cpu::rms_norm_f32(x.data<float>(), weight.data<float>(), out.data<float>(), x.dim(0),
                                                 x.dim(1), eps),
                      cuda_impl::rms_norm(ctx, x, weight, eps, out));
}

void add_rms_norm(const ExecContext& ctx, const Tensor& x, Tensor& residual, const Tensor& weight, float eps,
                  Tensor& out) {
  constexpr const char* op = "add_rms_norm";
  require_device(op, ctx, {{"x", x}, {"residual", residual}, {"weight", weight}, {"out", out}});
  require_same_dtype(op, {{"x", x}, {"residual", residual}, {"weight", weight}, {"out", out}});
  require_rank(op, {"x", x}, 2);
  LATTICE_CHECK(residual.shape() == x.shape(), op, ": residual ", residual.describe(), " differs from x ",
                x.describe());
  LATTICE_CHECK(weight.numel() == x.dim(1), op, ": weight has ", weight.numel(), " elements, x rows have ", x.dim(1));
  LATTICE_CHECK(out.shape() == x.shape(), op, ": out ", out.describe(), " differs from x ", x.describe());
  LATTICE_CHECK(out.raw() != residual.raw() || out.numel() == 0, op, ": out must not be the residual");
  LATTICE_DISPATCH_OP(op, ctx, x.dtype(),
                      kernels::cpu::add_rms_norm_f32(x.data<float>(), residual.data<float>(), weight.data<float>(),
                                                     out.data<float>(), x.dim(0), x.dim(1), eps),
                      cuda_impl::add_rms_norm(ctx, x, residual, weight, eps, out));
}

void head_rms_norm(const ExecContext& ctx, Tensor& qkv, int64_t col_begin, int64_t heads, const Tensor& weight,
                   float eps) {
  constexpr const char* op = "head_rms_norm";
  require_device(op, ctx, {{"qkv", qkv}, {"weight", weight}});
  require_same_dtype(op, {{"qkv", qkv}, {"weight", weight}});
  require_rank(op, {"qkv", qkv}, 2);
  require_rank(op, {"weight", weight}, 1);
  const int64_t head_dim = weight.dim(0);
  LATTICE_CHECK(col_begin >= 0 && heads >= 0 && col_begin + heads * head_dim <= qkv.dim(1), op, ": ", heads,
                " heads of ", head_dim, " from column ", col_begin, " do not fit in qkv ", qkv.describe());
  LATTICE_DISPATCH_OP(op, ctx, qkv.dtype(),
                      kernels::cpu::head_rms_norm_f32(qkv.data<float>() + col_begin, qkv.dim(1), weight.data<float>(),
                                                      qkv.dim(0), heads, head_dim, eps),
                      cuda_impl::head_rms_norm(ctx, qkv, col_begin, heads, weight, eps));
}

void add_(const ExecContext& ctx, Tensor& x, const Tensor& y) {
  constexpr const char* op = "add";
  require_device(op, ctx, {{"x", x}, {"y", y}});
  require_same_dtype(op, {{"x", x}, {"y", y}});
  LATTICE_CHECK(x.shape() == y.shape(), op, ": x ", x.describe(), " differs from y ", y.describe());
  LATTICE_DISPATCH_OP(op, ctx, x.dtype(), kernels::cpu::add_inplace_f32(x.data<float>(), y.data<float>(), x.numel()),
                      cuda_impl::add_(ctx, x, y));
}

void linear(const ExecContext& ctx, const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  constexpr const char* op = "linear";
  require_device(op, ctx, {{"x", x}, {"weight", weight}, {"out", out}});
  require_same_dtype(op, {{"x", x}, {"weight", weight}});
  require_rank(op, {"x", x}, 2);
  require_rank(op, {"weight", weight}, 2);
  LATTICE_CHECK(x.dim(1) == weight.dim(1), op, ": x has ", x.dim(1), " features, weight expects ", weight.dim(1));
  LATTICE_CHECK(out.rank() == 2 && out.dim(0) == x.dim(0) && out.dim(1) == weight.dim(0), op, ": out ",
                out.describe(), " should be [", x.dim(0), ", ", weight.dim(0), "]");
  LATTICE_CHECK(out.dtype() == x.dtype() || out.dtype() == DType::f32, op, ": out is ", dtype_name(out.dtype()),
                ", x is ", dtype_name(x.dtype()), " (out must be that or f32)");
  if (bias) {
    require_device(op, ctx, {{"bias", *bias}});
    require_same_dtype(op, {{"weight", weight}, {"bias", *bias}});
    LATTICE_CHECK(bias->numel() == weight.dim(0), op, ": bias has ", bias->numel(), " elements, weight has ",
                  weight.dim(0), " outputs");
  }
  LATTICE_DISPATCH_OP(op, ctx, x.dtype(),
                      kernels::cpu::gemm_nt_f32(x.data<float>(), weight.data<float>(), out.data<float>(), x.dim(0),
                                                weight.dim(0), x.dim(1), bias ? bias->data<float>() : nullptr),
                      cuda_impl::linear(ctx, x, weight, bias, out));
}

void silu_mul(const ExecContext& ctx, const Tensor& gate_up, Tensor& out) {
  constexpr const char* op = "silu_mul";
  require_device(op, ctx, {{"gate_up", gate_up}, {"out", out}});
  require_same_dtype(op, {{"gate_up", gate_up}, {"out", out}});
  require_rank(op, {"gate_up", gate_up}, 2);
  const int64_t rows = gate_up.dim(0), inter = gate_up.dim(1) / 2;
  LATTICE_CHECK(gate_up.dim(1) % 2 == 0, op, ": gate_up has ", gate_up.dim(1), " columns, not 2 * inter");
  LATTICE_CHECK(out.rank() == 2 && out.dim(0) == rows && out.dim(1) == inter, op, ": out ", out.describe(),
                " should be [", rows, ", ", inter, "] for gate_up ", gate_up.describe());
  LATTICE_DISPATCH_OP(op, ctx, gate_up.dtype(),
                      kernels::cpu::silu_mul_f32(gate_up.data<float>(), gate_up.data<float>() + inter,
                                                 out.data<float>(), rows, inter, 2 * inter),
                      cuda_impl::silu_mul(ctx, gate_up, out));
}

void rope_write_kv(const ExecContext& ctx, const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                   const Tensor& slots, Tensor& k_cache, Tensor& v_cache, Tensor& q_out) {
  constexpr const char* op = "rope_write_kv";
  require_device(op, ctx, {{"qkv", qkv}, {"positions", positions}, {"inv_freq", inv_freq}, {"slots", slots},
                           {"k_cache", k_cache}, {"v_cache", v_cache}, {"q_out", q_out}});
  require_same_dtype(op, {{"qkv", qkv}, {"k_cache", k_cache}, {"v_cache", v_cache}, {"q_out", q_out}});
  require_rank(op, {"qkv", qkv}, 2);
  require_rank(op, {"q_out", q_out}, 3);
  require_rank(op, {"k_cache", k_cache}, 4);
  const int64_t tokens = qkv.dim(0), heads = q_out.dim(1), head_dim = q_out.dim(2), kv_heads = k_cache.dim(2);
  LATTICE_CHECK(q_out.dim(0) == tokens, op, ": q_out has ", q_out.dim(0), " tokens, qkv has ", tokens);
  LATTICE_CHECK(v_cache.shape() == k_cache.shape(), op, ": v_cache ", v_cache.describe(), " differs from k_cache ",
                k_cache.describe());
  LATTICE_CHECK(k_cache.dim(3) == head_dim, op, ": cache head_dim ", k_cache.dim(3), ", q_out head_dim ", head_dim);
  LATTICE_CHECK(kv_heads > 0 && heads % kv_heads == 0, op, ": ", heads, " query heads are not a multiple of ",
                kv_heads, " kv heads");
  LATTICE_CHECK(qkv.dim(1) == (heads + 2 * kv_heads) * head_dim, op, ": qkv rows have ", qkv.dim(1),
                " elements, ", heads, " + 2 * ", kv_heads, " heads of ", head_dim, " need ",
                (heads + 2 * kv_heads) * head_dim);
  require_dtype(op, {"positions", positions}, DType::i32, 1);
  require_dtype(op, {"slots", slots}, DType::i64, 1);
  require_dtype(op, {"inv_freq", inv_freq}, DType::f32, 1);
  LATTICE_CHECK(positions.dim(0) == tokens && slots.dim(0) == tokens, op, ": ", positions.dim(0), " positions and ",
                slots.dim(0), " slots for ", tokens, " tokens");
  LATTICE_CHECK(head_dim % 2 == 0 && inv_freq.dim(0) == head_dim / 2, op, ": head_dim ", head_dim, " needs ",
                head_dim / 2, " frequencies, got ", inv_freq.dim(0));
  const kernels::PagedLayout layout{heads, kv_heads, head_dim, k_cache.dim(1)};
  const auto cpu_call = [&] {
    const int64_t cache_slots = k_cache.dim(0) * k_cache.dim(1);
    for (int64_t t = 0; t < tokens; ++t)  // host values: checked here, trusted on a GPU
      LATTICE_CHECK(slots.data<int64_t>()[t] < cache_slots, op, ": token ", t, " has slot ",
                    slots.data<int64_t>()[t], ", the cache has ", cache_slots);
    kernels::cpu::rope_write_kv_f32(qkv.data<float>(), positions.data<int32_t>(), inv_freq.data<float>(),
                                    slots.data<int64_t>(), k_cache.data<float>(), v_cache.data<float>(),
                                    q_out.data<float>(), tokens, layout);
  };
  LATTICE_DISPATCH_OP(op, ctx, qkv.dtype(), cpu_call(),
                      cuda_impl::rope_write_kv(ctx, qkv, positions, inv_freq, slots, k_cache, v_cache, q_out));
}

void gather_rows(const ExecContext& ctx, const Tensor& x, const Tensor& index, Tensor& out) {
  constexpr const char* op = "gather_rows";
  require_device(op, ctx, {{"x", x}, {"index", index}, {"out", out}});
  require_same_dtype(op, {{"x", x}, {"out", out}});
  require_rank(op, {"x", x}, 2);
  require_dtype(op, {"index", index}, DType::i32, 1);
  LATTICE_CHECK(out.rank() == 2 && out.dim(0) == index.dim(0) && out.dim(1) == x.dim(1), op, ": out ",
                out.describe(), " should be [", index.dim(0), ", ", x.dim(1), "]");
  // The embedding gather of a whole table (first id 0).
  LATTICE_DISPATCH_OP(op, ctx, x.dtype(),
                      kernels::cpu::embedding_f32(x.data<float>(), 0, x.dim(0), index.data<int32_t>(),
                                                  out.data<float>(), index.dim(0), x.dim(1)),
                      cuda_impl::gather_rows(ctx, x, index, out));
}

void convert(const ExecContext& ctx, const Tensor& in, Tensor& out) {
  constexpr const char* op = "convert";
  require_device(op, ctx, {{"in", in}, {"out", out}});
  LATTICE_CHECK(is_float(in.dtype()) && is_float(out.dtype()), op, ": ", in.describe(), " to ", out.describe(),
                " (only f32, f16 and bf16 convert)");
  LATTICE_CHECK(in.numel() == out.numel(), op, ": in ", in.describe(), " and out ", out.describe(),
                " hold different element counts");
  // The CPU converts every pair (f32 is its compute type, the half types its storage types).
  LATTICE_DISPATCH_OP(op, ctx, DType::f32, convert_cpu(in, out), cuda_impl::convert(ctx, in, out));
}

}  // namespace lattice::ops
