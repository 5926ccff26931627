// Tensor-core decode attention over the paged KV cache (f16 and bf16, sm_80+; internal to kernels/cuda): one block
// per (partition, KV head, sequence) puts up to 16 query heads of the KV head's group in the M dimension of
// mma.sync m16n8k16 tiles, so the group shares one read of K/V and its products run on the tensor cores.
// paged_attention_decode (paged_attention_decode.cuh) chooses it; see paged_attention_decode_kernel there.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda::detail {

// Operands and outputs as paged_attention_decode_grouped (paged_attention_decode_grouped.cuh): partition positions
// per block, splits blocks per (sequence, group chunk); splits == 1 writes out, otherwise part_out (normalised
// within the partition), part_max (natural-log units, scale applied) and part_sum for the merge. Needs head_dim
// in {64, 80, 96, 128, 256} and q, k_cache, v_cache 16-byte aligned (the dispatcher checks both).
// T in {__half, __nv_bfloat16}.
template <typename T>
void paged_attention_decode_mma(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                                int64_t partition, int64_t splits, T* out, float* part_out, float* part_max,
                                float* part_sum, const PagedLayout& layout, float scale, int window,
                                cudaStream_t stream);

}  // namespace lattice::kernels::cuda::detail
