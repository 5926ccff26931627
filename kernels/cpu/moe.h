// Mixture-of-experts routing, grouping and combine (CPU; route and combine in f32). Mirrors kernels/cuda/moe.cuh.
// A token t picks top_k experts; its j-th pick is assignment a = t * top_k + j.
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// For each token t: p = softmax(logits[t, 0:experts]) in f32 (max subtracted), then the top_k experts by p in
// decreasing order, ties to the lower index (ids i32 [tokens, top_k]); weights f32 [tokens, top_k] = their p,
// divided by the sum of the top_k p when renormalize. The Hugging Face Mixtral / Qwen3-MoE router.
void moe_route_f32(const float* logits, int32_t* ids, float* weights, int64_t tokens, int64_t experts, int64_t top_k,
                   bool renormalize);

// Groups the assignments whose expert is in [expert_begin, expert_end) by expert, in token order within an
// expert: local expert e's assignments take slots offsets[e] .. offsets[e + 1] (offsets i64 [local + 1],
// local = expert_end - expert_begin), rows[slot] = the token (i32 [tokens * top_k], the first offsets[local]
// written), positions[a] = the slot of assignment a, or -1 when its expert is outside the range (i32
// [tokens * top_k]).
void moe_group(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t expert_begin, int64_t expert_end,
               int32_t* rows, int32_t* positions, int64_t* offsets);

// out[t, :] = sum over j of weights[t, j] * expert_out[positions[t * top_k + j], :], skipping positions < 0
// (a zero row when all are), accumulated in f32 in j order. expert_out [slots, dim], out [tokens, dim].
void moe_combine_f32(const float* expert_out, const int32_t* positions, const float* weights, float* out,
                     int64_t tokens, int64_t top_k, int64_t dim);

}  // namespace lattice::kernels::cpu
