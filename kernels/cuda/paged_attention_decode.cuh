// Decode attention over the paged KV cache (CUDA): one new token per sequence, the context split into
// partitions of kDecodePartition positions that run as separate blocks (split-K), then merged with their
// softmax statistics. Mirrors kernels/cpu paged_attention_f32 with q_len = 1.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda {

inline constexpr int64_t kDecodePartition = 512;

// Device bytes of f32 scratch paged_attention_decode needs (0 when max_context_len fits one partition).
size_t paged_attention_decode_workspace_bytes(int64_t num_seqs, const PagedLayout& layout, int64_t max_context_len);

// q, out: [num_seqs, heads, head_dim]. Sequence s attends to cache positions [0, context_lens[s]) (its new
// token's K/V already written), whose blocks are block_tables[s * max_blocks_per_seq + i].
// max_context_len >= every context_lens[s] (host value: it sizes the grid, so a CUDA graph captures it).
// workspace: at least paged_attention_decode_workspace_bytes(...) bytes of device memory (may be null when 0).
// Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void paged_attention_decode(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                            int64_t max_context_len, T* out, const PagedLayout& layout, float scale, void* workspace,
                            size_t workspace_bytes, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
