// The mixture-of-experts ops (Mixtral, Qwen3-MoE): route each token to its top-k experts, group the
// assignments by expert so that each expert runs one GEMM over its gathered rows (ops::gather_rows, then
// ops::linear on row ranges), and combine the experts' outputs back per token with the routing weights.
// Same semantics on both backends (kernels/cpu/moe.h, kernels/cuda/moe.cuh).
#pragma once

#include <vector>

#include "engine/core/tensor.h"
#include "engine/ops/exec_context.h"

namespace lattice::ops {

// The Hugging Face router: per token, softmax over all experts of logits f32 [tokens, experts] in f32, the
// top_k experts by probability (ties to the lower index) into ids i32 [tokens, top_k], in decreasing order, and
// their probabilities into weights f32 [tokens, top_k], divided by their sum when renormalize (Mixtral always,
// Qwen3-MoE when norm_topk_prob).
void moe_route(const ExecContext& ctx, const Tensor& logits, bool renormalize, Tensor& ids, Tensor& weights);

// Groups the assignments (token t's j-th expert, a = t * top_k + j) of ids i32 [tokens, top_k] whose expert is
// in [expert_begin, expert_end) (this rank's experts) by expert, token order within each: rows i32
// [tokens * top_k] holds their tokens, local expert e's in slots [offsets[e], offsets[e + 1]); positions i32
// [tokens, top_k] the slot of each assignment, -1 for another rank's expert; offsets i64 [local + 1] on the
// device. Returns offsets on the host, which the per-expert GEMMs need for their row counts. On a GPU this is
// the one op that synchronises the host with the stream (a device-to-host copy of local + 1 counts per MoE
// layer; a step of a CUDA graph cannot hold it).
std::vector<int64_t> moe_group(const ExecContext& ctx, const Tensor& ids, int64_t expert_begin, int64_t expert_end,
                               Tensor& rows, Tensor& positions, Tensor& offsets);

// out [tokens, dim] = per token, sum over j of weights[t, j] * expert_out[positions[t, j]] (positions < 0
// skipped, a zero row when all are), accumulated in f32. expert_out [slots, dim] and out share one dtype;
// weights f32 and positions i32 [tokens, top_k].
void moe_combine(const ExecContext& ctx, const Tensor& expert_out, const Tensor& positions, const Tensor& weights,
                 Tensor& out);

}  // namespace lattice::ops
