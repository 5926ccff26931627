// What the two tensor-core prefill kernels (paged_attention_prefill_mma.cu, paged_attention_prefill_wgmma.cu) share
// on the host: the operand checks they need and their launch. Both take the same operands in the same order, run
// one block per (query tile of `rows` packed (token, head) rows, KV head, sequence), and want the scale in base 2.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda::detail {

// 16-byte copies of q and the cache rows (head_dim a multiple of 8 keeps every row aligned), 4-byte output stores.
template <typename T>
bool prefill_operands_aligned(const T* q, const T* k_cache, const T* v_cache, const T* out) {
  const auto at = [](const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; };
  return at(q, 16) && at(k_cache, 16) && at(v_cache, 16) && at(out, 4);
}

template <typename T>
using PrefillKernel = void (*)(const T*, const T*, const T*, const int32_t*, int64_t, const int32_t*, const int32_t*,
                               const int32_t*, T*, int, int, int, float, int);

template <typename T>
void launch_prefill(PrefillKernel<T> kernel, int threads, int rows, size_t shared, const T* q, const T* k_cache,
                    const T* v_cache, const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* q_begins,
                    const int32_t* q_lens, const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                    const PagedLayout& layout, float scale, int window, cudaStream_t stream) {
  constexpr float kLog2e = 1.4426950408889634f;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)));
  const int64_t group = layout.heads / layout.kv_heads;
  const int64_t tiles = (max_q_len * group + rows - 1) / rows;
  LATTICE_CHECK(tiles <= INT32_MAX, "paged_attention_prefill: ", max_q_len, " rows x ", group, " heads per group");
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(layout.kv_heads),
                  static_cast<unsigned>(num_seqs));
  kernel<<<grid, threads, shared, stream>>>(q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins, q_lens,
                                            context_lens, out, static_cast<int>(layout.heads),
                                            static_cast<int>(layout.kv_heads), static_cast<int>(layout.block_size),
                                            scale * kLog2e, window);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lattice::kernels::cuda::detail
