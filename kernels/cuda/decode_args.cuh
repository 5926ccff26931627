// The operands the two group-sharing decode kernels (paged_attention_decode_grouped.cu, paged_attention_decode_mma.cu)
// take, passed by value to the kernel, built once from their common launcher arguments.
#pragma once

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda::detail {

template <typename T> struct DecodeArgs {
  const T* q;
  const T* k_cache;
  const T* v_cache;
  const int32_t* block_tables;
  int64_t max_blocks_per_seq;
  const int32_t* context_lens;
  T* out;
  float* part_out;
  float* part_max;
  float* part_sum;
  int heads, kv_heads, block_size, partition;
  float scale_log2;  // the softmax scale in base 2 (times log2 e)
  int window;        // sliding window in positions, 0 for none
};

template <typename T>
DecodeArgs<T> make_decode_args(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                               int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t partition, T* out,
                               float* part_out, float* part_max, float* part_sum, const PagedLayout& layout,
                               float scale, int window) {
  constexpr float kLog2e = 1.4426950408889634f;
  return {q,
          k_cache,
          v_cache,
          block_tables,
          max_blocks_per_seq,
          context_lens,
          out,
          part_out,
          part_max,
          part_sum,
          static_cast<int>(layout.heads),
          static_cast<int>(layout.kv_heads),
          static_cast<int>(layout.block_size),
          static_cast<int>(partition),
          scale * kLog2e,
          window};
}

}  // namespace lattice::kernels::cuda::detail
