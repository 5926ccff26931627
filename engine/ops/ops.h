// Tensor-level ops: each validates its operands (naming both sizes on a mismatch) and dispatches on the
// context's device and the operands' dtype to a kernel: kernels/cpu (f32, the oracle) or kernels/cuda
// (f32, f16, bf16). Both backends implement every op here with the same semantics. Activations are
// [tokens, ...] row-major; every operand must live on ctx.device.
#pragma once

#include "engine/core/tensor.h"
#include "engine/ops/exec_context.h"

namespace lattice::ops {

// out [tokens, hidden] = rows of table [rows, hidden] at ids [tokens] (i32). The table holds ids
// [first_id, first_id + rows) (a vocabulary-parallel shard; 0 for a whole table); other ids give zero rows.
// out has the table's dtype or f32.
void embedding(const ExecContext& ctx, const Tensor& table, const Tensor& ids, int64_t first_id, Tensor& out);

// out [rows, dim] = rms_norm(x [rows, dim]) * weight [dim]; out may be x.
void rms_norm(const ExecContext& ctx, const Tensor& x, const Tensor& weight, float eps, Tensor& out);

// residual += x (stored in residual's dtype), then out = rms_norm(residual) * weight of that stored residual;
// out may be x, not residual.
void add_rms_norm(const ExecContext& ctx, const Tensor& x, Tensor& residual, const Tensor& weight, float eps,
                  Tensor& out);

// x += y, same shape.
void add_(const ExecContext& ctx, Tensor& x, const Tensor& y);

// out [m, n] = x [m, k] @ weight [n, k]^T (+ bias [n]), accumulated in f32. out may be f32 with half x/weight
// (logits); otherwise all operands share one dtype. bias has the weight's dtype; on a GPU it is cuBLASLt's bias
// epilogue, which reads it in the output's dtype, so a half bias with an f32 output is refused there.
void linear(const ExecContext& ctx, const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);

// out [rows, inter] = silu(gate_up[:, :inter]) * gate_up[:, inter:], gate_up [rows, 2 * inter] (the fused
// gate/up projection's output).
void silu_mul(const ExecContext& ctx, const Tensor& gate_up, Tensor& out);

// Per-head RMSNorm in place on one projection inside the fused q/k/v output (Qwen3's q_norm and k_norm, before
// RoPE): for every token t and head h < heads, qkv[t, col_begin + h * head_dim : + head_dim] = rms_norm(those
// values) * weight, head_dim = weight's size. qkv [tokens, width] with col_begin + heads * head_dim <= width.
void head_rms_norm(const ExecContext& ctx, Tensor& qkv, int64_t col_begin, int64_t heads, const Tensor& weight,
                   float eps);

// qkv [tokens, (heads + 2 * kv_heads) * head_dim] is the fused q/k/v projection's output (q heads, then k, then
// v). Writes q rotated by RoPE (Hugging Face rotate_half, angles positions[t] * inv_freq[i]) to
// q_out [tokens, heads, head_dim], and k rotated and v as they are into the cache at slots[t] (i64; a negative
// slot skips the write, for padding rows). positions i32 [tokens]; inv_freq f32 [head_dim / 2];
// k_cache, v_cache [num_blocks, block_size, kv_heads, head_dim]. qkv is not modified. On the CPU the slots are
// checked against the cache; on a GPU they are trusted.
void rope_write_kv(const ExecContext& ctx, const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                   const Tensor& slots, Tensor& k_cache, Tensor& v_cache, Tensor& q_out);

// out [n, dim] = x [rows, dim] at index i32 [n], one dtype; an index outside [0, rows) gives a zero row.
void gather_rows(const ExecContext& ctx, const Tensor& x, const Tensor& index, Tensor& out);

// out = in converted element-wise between f32, f16 and bf16 (round to nearest even), same element count. The
// CPU converts every pair too (its storage types), unlike the other ops, which it runs in f32 only.
void convert(const ExecContext& ctx, const Tensor& in, Tensor& out);

}  // namespace lattice::ops
