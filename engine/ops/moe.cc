#include "engine/ops/moe.h"

#include <algorithm>

#include "engine/ops/cuda_ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/moe.h"

namespace lattice::ops {

void moe_route(const ExecContext& ctx, const Tensor& logits, bool renormalize, Tensor& ids, Tensor& weights) {
  constexpr const char* op = "moe_route";
  require_device(op, ctx, {{"logits", logits}, {"ids", ids}, {"weights", weights}});
  require_dtype(op, {"logits", logits}, DType::f32, 2);
  require_dtype(op, {"ids", ids}, DType::i32, 2);
  require_dtype(op, {"weights", weights}, DType::f32, 2);
  const int64_t tokens = logits.dim(0), experts = logits.dim(1), top_k = ids.dim(1);
  LATTICE_CHECK(ids.dim(0) == tokens && weights.shape() == ids.shape(), op, ": ids ", ids.describe(), " and weights ",
                weights.describe(), " should both be [", tokens, ", top_k] for logits ", logits.describe());
  LATTICE_CHECK(top_k >= 1 && top_k <= experts, op, ": top_k ", top_k, " must be in [1, ", experts, " experts]");
  LATTICE_DISPATCH_OP(op, ctx, DType::f32,
                      kernels::cpu::moe_route_f32(logits.data<float>(), ids.data<int32_t>(), weights.data<float>(),
                                                  tokens, experts, top_k, renormalize),
                      cuda_impl::moe_route(ctx, logits, renormalize, ids, weights));
}

std::vector<int64_t> moe_group(const ExecContext& ctx, const Tensor& ids, int64_t expert_begin, int64_t expert_end,
                               Tensor& rows, Tensor& positions, Tensor& offsets) {
  constexpr const char* op = "moe_group";
  require_device(op, ctx, {{"ids", ids}, {"rows", rows}, {"positions", positions}, {"offsets", offsets}});
  require_dtype(op, {"ids", ids}, DType::i32, 2);
  require_dtype(op, {"rows", rows}, DType::i32, 1);
  require_dtype(op, {"positions", positions}, DType::i32, 2);
  require_dtype(op, {"offsets", offsets}, DType::i64, 1);
  LATTICE_CHECK(0 <= expert_begin && expert_begin < expert_end, op, ": empty expert range [", expert_begin, ", ",
                expert_end, ")");
  LATTICE_CHECK(positions.shape() == ids.shape() && rows.dim(0) == ids.numel(), op, ": positions ",
                positions.describe(), " and rows ", rows.describe(), " do not fit ids ", ids.describe());
  LATTICE_CHECK(offsets.dim(0) == expert_end - expert_begin + 1, op, ": offsets ", offsets.describe(), " should hold ",
                expert_end - expert_begin + 1, " entries for experts [", expert_begin, ", ", expert_end, ")");
  std::vector<int64_t> host(static_cast<size_t>(offsets.dim(0)));
  const auto cpu_call = [&] {
    kernels::cpu::moe_group(ids.data<int32_t>(), ids.dim(0), ids.dim(1), expert_begin, expert_end,
                            rows.data<int32_t>(), positions.data<int32_t>(), offsets.data<int64_t>());
    std::copy(offsets.data<int64_t>(), offsets.data<int64_t>() + offsets.dim(0), host.begin());
  };
  LATTICE_DISPATCH_OP(op, ctx, DType::f32, cpu_call(),
                      cuda_impl::moe_group(ctx, ids, expert_begin, expert_end, rows, positions, offsets, host.data()));
  return host;
}

void moe_combine(const ExecContext& ctx, const Tensor& expert_out, const Tensor& positions, const Tensor& weights,
                 Tensor& out) {
  constexpr const char* op = "moe_combine";
  require_device(op, ctx,
                 {{"expert_out", expert_out}, {"positions", positions}, {"weights", weights}, {"out", out}});
  require_same_dtype(op, {{"expert_out", expert_out}, {"out", out}});
  require_rank(op, {"expert_out", expert_out}, 2);
  require_rank(op, {"out", out}, 2);
  require_dtype(op, {"positions", positions}, DType::i32, 2);
  require_dtype(op, {"weights", weights}, DType::f32, 2);
  LATTICE_CHECK(positions.shape() == weights.shape() && positions.dim(0) == out.dim(0), op, ": positions ",
                positions.describe(), " and weights ", weights.describe(), " should both be [", out.dim(0),
                ", top_k] for out ", out.describe());
  LATTICE_CHECK(expert_out.dim(1) == out.dim(1), op, ": expert_out rows have ", expert_out.dim(1),
                " elements, out rows ", out.dim(1));
  // Slots are checked on the host (the CPU); on a GPU moe_group made them and they are trusted.
  const auto cpu_call = [&] {
    for (int64_t a = 0; a < positions.numel(); ++a)
      LATTICE_CHECK(positions.data<int32_t>()[a] < expert_out.dim(0), op, ": assignment ", a, " has slot ",
                    positions.data<int32_t>()[a], ", expert_out has ", expert_out.dim(0), " rows");
    kernels::cpu::moe_combine_f32(expert_out.data<float>(), positions.data<int32_t>(), weights.data<float>(),
                                  out.data<float>(), out.dim(0), positions.dim(1), out.dim(1));
  };
  LATTICE_DISPATCH_OP(op, ctx, out.dtype(), cpu_call(), cuda_impl::moe_combine(ctx, expert_out, positions, weights, out));
}

}  // namespace lattice::ops
