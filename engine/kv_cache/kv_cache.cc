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

KvCache::KvCache(const KvCacheShape& shape, int32_t num_blocks, DType dtype, Device device)
    : shape_(shape), num_blocks_(num_blocks) {
  for (int64_t l = 0; l < shape.layers; ++l) {
    k_.push_back(Tensor::empty({num_blocks, shape.block_size, shape.kv_heads, shape.head_dim}, dtype, device));
    v_.push_back(Tensor::empty({num_blocks, shape.block_size, shape.kv_heads, shape.head_dim}, dtype, device));
  }
}

}  // namespace lattice
