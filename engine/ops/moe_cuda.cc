// CUDA implementations of engine/ops/moe.h (operands already checked by the public ops).
#include <cuda_runtime_api.h>

#include "engine/ops/cuda_dtype.h"
#include "engine/ops/cuda_ops.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/moe.cuh"

namespace lattice::ops::cuda_impl {

namespace gpu = kernels::cuda;

void moe_route(const ExecContext& ctx, const Tensor& logits, bool renormalize, Tensor& ids, Tensor& weights) {
  gpu::moe_route(ptr<const float>(logits), ptr<int32_t>(ids), ptr<float>(weights), logits.dim(0), logits.dim(1),
                 ids.dim(1), renormalize, ctx.stream);
}

void moe_group(const ExecContext& ctx, const Tensor& ids, int64_t expert_begin, int64_t expert_end, Tensor& rows,
               Tensor& positions, Tensor& offsets, int64_t* host_offsets) {
  gpu::moe_group(ptr<const int32_t>(ids), ids.dim(0), ids.dim(1), expert_begin, expert_end, ptr<int32_t>(rows),
                 ptr<int32_t>(positions), ptr<int64_t>(offsets), ctx.stream);
  // The per-expert GEMMs are sized on the host: wait for the counts (the MoE layer's one synchronisation).
  CUDA_CHECK(cudaMemcpyAsync(host_offsets, offsets.raw(), offsets.nbytes(), cudaMemcpyDeviceToHost, ctx.stream));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

void moe_combine(const ExecContext& ctx, const Tensor& expert_out, const Tensor& positions, const Tensor& weights,
                 Tensor& out) {
  with_float_type("moe_combine", out.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::moe_combine(ptr<const T>(expert_out), ptr<const int32_t>(positions), ptr<const float>(weights), ptr<T>(out),
                     out.dim(0), positions.dim(1), out.dim(1), ctx.stream);
  });
}

}  // namespace lattice::ops::cuda_impl
