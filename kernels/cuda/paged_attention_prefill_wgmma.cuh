// Hopper prefill attention over the paged KV cache (sm_90a, f16 and bf16, head_dim 64/128/256; internal to
// kernels/cuda): FlashAttention-3 style on warpgroup MMA (wgmma), a producer warpgroup loading K/V while two
// consumer warpgroups compute. paged_attention_prefill (paged_attention_prefill.cuh) tries it first on a
// compute capability 9.0 device, then the mma.sync kernel (paged_attention_prefill_mma.cuh), then SIMT.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda::detail {

// Whether the current device can run the wgmma kernel: compute capability 9.0 and this binary built with
// sm_90a code for it (CMAKE_CUDA_ARCHITECTURES holding 90a).
bool paged_attention_prefill_wgmma_available();

// Same operands and contract as paged_attention_prefill (window: its sliding_window). Returns false, launching
// nothing, when the device, the head dim or the pointers are outside what the kernel takes.
// T in {__half, __nv_bfloat16}.
template <typename T>
bool paged_attention_prefill_wgmma(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                   int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                                   const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                                   const PagedLayout& layout, float scale, int window, cudaStream_t stream);

}  // namespace lattice::kernels::cuda::detail
