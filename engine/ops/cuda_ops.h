// The CUDA implementations behind engine/ops/ops.h, attention.h and moe.h (engine/ops/*_cuda.cc, built only with
// LATTICE_HAVE_CUDA). Same signatures and semantics; the public op has already checked every operand's shape,
// dtype and device, so these dispatch on dtype and launch kernels/cuda on ctx.stream.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/core/tensor.h"
#include "engine/ops/attention.h"
#include "engine/ops/exec_context.h"

namespace lattice::ops::cuda_impl {

void embedding(const ExecContext& ctx, const Tensor& table, const Tensor& ids, int64_t first_id, Tensor& out);
void rms_norm(const ExecContext& ctx, const Tensor& x, const Tensor& weight, float eps, Tensor& out);
void add_rms_norm(const ExecContext& ctx, const Tensor& x, Tensor& residual, const Tensor& weight, float eps,
                  Tensor& out);
void head_rms_norm(const ExecContext& ctx, Tensor& qkv, int64_t col_begin, int64_t heads, const Tensor& weight,
                   float eps);
void add_(const ExecContext& ctx, Tensor& x, const Tensor& y);
void linear(const ExecContext& ctx, const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);
void silu_mul(const ExecContext& ctx, const Tensor& gate_up, Tensor& out);
void rope_write_kv(const ExecContext& ctx, const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                   const Tensor& slots, Tensor& k_cache, Tensor& v_cache, Tensor& q_out);
void gather_rows(const ExecContext& ctx, const Tensor& x, const Tensor& index, Tensor& out);
void convert(const ExecContext& ctx, const Tensor& in, Tensor& out);
void moe_route(const ExecContext& ctx, const Tensor& logits, bool renormalize, Tensor& ids, Tensor& weights);
// Also copies offsets to host_offsets (host memory) and waits for the copy.
void moe_group(const ExecContext& ctx, const Tensor& ids, int64_t expert_begin, int64_t expert_end, Tensor& rows,
               Tensor& positions, Tensor& offsets, int64_t* host_offsets);
void moe_combine(const ExecContext& ctx, const Tensor& expert_out, const Tensor& positions, const Tensor& weights,
                 Tensor& out);
void paged_attention(const ExecContext& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const AttentionInputs& in, float scale, Tensor& out);
size_t attention_scratch_bytes(int64_t seqs, int64_t heads, int64_t head_dim, int64_t max_context_len);

}  // namespace lattice::ops::cuda_impl
