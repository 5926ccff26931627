// Prefill attention over the paged KV cache (CUDA): causal, tiled over keys with an online softmax
// (FlashAttention-2 style: one pass, no score matrix in memory), grouped-query heads reading their shared KV
// head in place. Handles any mix of chunks (a decode token is a chunk of one). Mirrors kernels/cpu
// paged_attention_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda {

// q, out: [tokens, heads, head_dim]. Sequence s owns q rows [q_begins[s], q_begins[s] + q_lens[s]), the last
// q_lens[s] positions of a context of context_lens[s] tokens (its K/V already in the cache) whose blocks are
// block_tables[s * max_blocks_per_seq + i]; row j of the chunk sees positions [0, context_lens[s] - q_lens[s] + j],
// only the last sliding_window of them when sliding_window > 0: block table entries of blocks wholly before every
// row's window are never read, so those blocks may have been freed.
// q_begins, q_lens, context_lens, block_tables live on the device; max_q_len (host) >= every q_lens[s] sizes
// the grid. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void paged_attention_prefill(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                             int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                             const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                             const PagedLayout& layout, float scale, int64_t sliding_window, cudaStream_t stream);
// Kernel choice: f16/bf16 take the wgmma kernel on a compute capability 9.0 device when the binary holds sm_90a
// code (head_dim 64/128/256), else the mma.sync kernel (sm_80+, head_dim 64/80/96/128/256), else the SIMT kernel
// (f32, any head_dim up to kMaxHeadDim). The environment variable LATTICE_ATTENTION_BACKEND, read at the first
// call, overrides: "mma" never takes the wgmma kernel, "simt" always takes the SIMT one ("auto" or unset: the
// rule above; anything else throws).

namespace detail {
// The SIMT kernel alone (the fallback; the tests run it directly). window: the sliding_window.
template <typename T>
void paged_attention_prefill_simt(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                  int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                                  const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                                  const PagedLayout& layout, float scale, int window, cudaStream_t stream);
}  // namespace detail

}  // namespace lattice::kernels::cuda
