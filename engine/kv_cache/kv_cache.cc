#include "engine/kv_cache/kv_cache.h"

namespace lattice {

int64_t KvCacheShape::bytes_per_block(DType dtype) const {
  return 2 * layers * block_size * kv_heads * head_dim * static_cast<int64_t>(dtype_size(dtype));
}

int32_t KvCacheShape::blocks_in(size_t bytes, DType dtype) const {
  const int64_t per_block = bytes_per_block(dtype);
  const int64_t blocks = static_cast<int64_t>(bytes) / per_block;
  LATTICE_CHECK(blocks >= 1, "KV cache of ", bytes, " bytes holds no block (one block of ", block_size,
                " tokens needs ", per_block, " bytes)");
  return static_cast<int32_t>(std::min<int64_t>(blocks, INT32_MAX));
}

size_t gpu_kv_budget(size_t total, size_t free, double utilization, size_t reserved, int64_t block_bytes) {
  constexpr double kGiB = 1 << 30;
  LATTICE_CHECK(free <= total, "free device memory (", free, ") exceeds the total (", total, ")");
  const double used = static_cast<double>(total - free) + static_cast<double>(reserved);
  const double budget = static_cast<double>(total) * utilization - used;
  LATTICE_CHECK(budget >= static_cast<double>(block_bytes), "no room for the KV cache: --gpu-memory-utilization ",
                utilization, " of ", total / kGiB, " GiB leaves ", budget / kGiB, " GiB once weights and workspaces (",
                used / kGiB, " GiB) are in place, less than one block (", block_bytes,
                " bytes); raise it, lower --max-tokens-per-step/--max-seqs, or spread the model over more GPUs");
  return static_cast<size_t>(budget);
}

size_t cuda_graph_reserve(int64_t profiled_bytes) {
  LATTICE_CHECK(profiled_bytes >= 0, "the decode graphs' profiled memory is negative: ", profiled_bytes, " bytes");
  constexpr int64_t kFloor = 16 << 20;
  return static_cast<size_t>(profiled_bytes + profiled_bytes / 8 + kFloor);
}

KvCache::KvCache(const KvCacheShape& shape, int32_t num_blocks, DType dtype, Device device)
    : shape_(shape), num_blocks_(num_blocks) {
  for (int64_t l = 0; l < shape.layers; ++l) {
    k_.push_back(Tensor::empty({num_blocks, shape.block_size, shape.kv_heads, shape.head_dim}, dtype, device));
    v_.push_back(Tensor::empty({num_blocks, shape.block_size, shape.kv_heads, shape.head_dim}, dtype, device));
  }
}

}  // namespace lattice
