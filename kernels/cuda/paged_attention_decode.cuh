// Decode attention over the paged KV cache (CUDA): one new token per sequence, the context split into
// partitions (paged_attention_decode_partition positions) that run as separate blocks (split-K), then merged
// with their softmax statistics. Mirrors kernels/cpu paged_attention_f32 with q_len = 1.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda {

// The largest partition (positions per block of the split-K grid).
inline constexpr int64_t kDecodePartition = 512;

// Positions per partition in a step of num_seqs sequences: 512 from 16 sequences up, 256 from 4, 128 below, so
// that a small batch still spreads over the GPU's multiprocessors.
int64_t paged_attention_decode_partition(int64_t num_seqs);

// Device bytes of f32 scratch enough for every decode step of at most num_seqs sequences and max_context_len
// positions (0 when every such step fits one partition). A smaller batch uses smaller partitions, so this is a
// maximum over batch sizes up to num_seqs: reserved once for the largest step, it covers every smaller one.
size_t paged_attention_decode_workspace_bytes(int64_t num_seqs, const PagedLayout& layout, int64_t max_context_len);

// The kernels behind paged_attention_decode, and the one it runs for a layout, element type T and whether q and the
// caches are 16-byte aligned (the rule and its reasons are in paged_attention_decode.cu). T in {float, __half,
// __nv_bfloat16}.
enum class DecodeKernel {
  simt,          // a block per (partition, query head): f32, or head dims the others do not take
  grouped_simt,  // a block per (partition, KV head) serves up to 4 query heads on the SIMT cores
  tensor_core,   // a block per (partition, KV head) puts up to 16 query heads in the M of mma.sync tiles
};
template <typename T>
DecodeKernel paged_attention_decode_kernel(const PagedLayout& layout, bool aligned16);
const char* decode_kernel_name(DecodeKernel kernel);

// q, out: [num_seqs, heads, head_dim]. Sequence s attends to cache positions [0, context_lens[s]) (its new
// token's K/V already written), only the last sliding_window of them when sliding_window > 0, whose blocks are
// block_tables[s * max_blocks_per_seq + i] (entries of blocks wholly before the window are never read, so those
// blocks may have been freed).
// max_context_len >= every context_lens[s] (host value: it sizes the grid, so a CUDA graph captures it).
// workspace: at least paged_attention_decode_workspace_bytes(...) bytes of device memory (may be null when 0).
// kernel: run this one instead of paged_attention_decode_kernel's choice (benchmarks and tests compare the kernels on
// one shape); an error when it cannot take the element type, head_dim or operand alignment.
// Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void paged_attention_decode(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                            int64_t max_context_len, T* out, const PagedLayout& layout, float scale,
                            int64_t sliding_window, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                            std::optional<DecodeKernel> kernel = std::nullopt);

}  // namespace lattice::kernels::cuda
