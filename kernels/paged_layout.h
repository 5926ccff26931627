// Paged KV cache geometry shared by the CPU and CUDA attention kernels. Cache of one layer:
// [num_blocks, block_size, kv_heads, head_dim]; slot = block * block_size + offset.
#pragma once

#include <cstdint>

namespace lattice::kernels {

struct PagedLayout {
  int64_t heads;
  int64_t kv_heads;  // divides heads (grouped-query attention reads the shared KV head, never a copy)
  int64_t head_dim;  // even
  int64_t block_size;
};

}  // namespace lattice::kernels
