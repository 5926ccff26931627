// Mixture-of-experts routing, grouping and combine (CUDA), mirroring kernels/cpu/moe.h (same semantics, same
// tie-breaking, same slot order).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// ids i32 [tokens, top_k], weights f32 [tokens, top_k] from f32 router logits [tokens, experts]: softmax in f32,
// top_k by probability (ties to the lower index), renormalised over the top_k when asked. One thread per token.
void moe_route(const float* logits, int32_t* ids, float* weights, int64_t tokens, int64_t experts, int64_t top_k,
               bool renormalize, cudaStream_t stream);

// rows, positions and offsets (all device memory) as kernels/cpu/moe.h moe_group: one block, a thread per
// expert of [expert_begin, expert_end) counting and then placing its assignments in token order, so the slot
// order is the CPU's. Each thread scans all tokens * top_k ids twice: cheap for decode batches; a prefill of
// thousands of tokens over 100+ experts would want a parallel counting sort instead.
void moe_group(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t expert_begin, int64_t expert_end,
               int32_t* rows, int32_t* positions, int64_t* offsets, cudaStream_t stream);

// out[t, :] = sum_j weights[t, j] * expert_out[positions[t, j], :] (positions < 0 skipped), f32 accumulation in
// j order, one rounding to T. One block per token. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void moe_combine(const T* expert_out, const int32_t* positions, const float* weights, T* out, int64_t tokens,
                 int64_t top_k, int64_t dim, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
