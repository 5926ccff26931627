// Paged KV cache geometry shared by the CUDA attention kernels (same fields as kernels/cpu PagedLayout).
// Cache of one layer: [num_blocks, block_size, kv_heads, head_dim]; slot = block * block_size + offset.
#pragma once

#include <cstdint>

namespace lattice::kernels::cuda {

struct PagedLayout {
  int64_t heads;
  int64_t kv_heads;  // divides heads (grouped-query attention reads the shared KV head, never a copy)
  int64_t head_dim;  // even, at most kMaxHeadDim
  int64_t block_size;
};

inline constexpr int64_t kMaxHeadDim = 256;

}  // namespace lattice::kernels::cuda
