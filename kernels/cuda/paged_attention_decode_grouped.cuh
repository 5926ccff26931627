// Grouped-query decode attention over the paged KV cache (f16 and bf16; internal to kernels/cuda): one block per
// (partition, KV head, sequence) serves up to 4 query heads of the KV head's group from a single read of K/V,
// with 16-byte loads. paged_attention_decode (paged_attention_decode.cuh) chooses it for GQA groups below 4 (see
// paged_attention_decode_kernel there).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda::detail {

// Operands as paged_attention_decode (window: its sliding_window); partition (<= kDecodePartition) positions per
// block, splits blocks per sequence and head chunk. With splits == 1 it writes out; otherwise the per-partition
// results go to part_out [num_seqs, heads, splits, head_dim] (normalised within the partition), part_max
// (natural-log units, scale applied) and part_sum [num_seqs, heads, splits], in the layout decode's merge reads.
// Needs head_dim in {64, 128, 256} and q, k_cache, v_cache 16-byte aligned (the dispatcher checks both).
// T in {__half, __nv_bfloat16}.
template <typename T>
void paged_attention_decode_grouped(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                    int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                                    int64_t partition, int64_t splits, T* out, float* part_out, float* part_max,
                                    float* part_sum, const PagedLayout& layout, float scale, int window,
                                    cudaStream_t stream);

}  // namespace lattice::kernels::cuda::detail
