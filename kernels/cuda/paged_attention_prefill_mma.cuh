// Tensor-core prefill attention over the paged KV cache (sm_80+, f16 and bf16; internal to kernels/cuda):
// FlashAttention-2 style with mma.sync. paged_attention_prefill (paged_attention_prefill.cuh) calls it when the
// Hopper wgmma kernel declines (or LATTICE_ATTENTION_BACKEND=mma) and keeps its SIMT kernel for what this one
// declines (f32, head dims outside {64, 80, 96, 128, 256}, unaligned pointers).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda::detail {

// Same operands and contract as paged_attention_prefill (window: its sliding_window). Returns false, launching nothing, when the layout or
// the pointers are outside what the tensor-core kernel takes. T in {__half, __nv_bfloat16}.
template <typename T>
bool paged_attention_prefill_mma(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                 int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                                 const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                                 const PagedLayout& layout, float scale, int window, cudaStream_t stream);

}  // namespace lattice::kernels::cuda::detail
