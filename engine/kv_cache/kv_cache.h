// The KV cache storage: per layer, K and V as [num_blocks, block_size, kv_heads, head_dim] (f32 on cpu).
// Which block belongs to which sequence is decided by BlockManager; this class only holds the memory.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace lattice {

struct KvCacheShape {
  int64_t layers;
  int64_t kv_heads;
  int64_t head_dim;
  int64_t block_size = 16;

  int64_t bytes_per_block(DType dtype) const;  // K and V of every layer
  // Number of blocks that fit in `bytes`; an error naming the numbers when not even one fits.
  int32_t blocks_in(size_t bytes, DType dtype) const;
};

// Bytes the KV cache may take on a GPU of `total` bytes with `free` free now: `utilization` of the device, less
// what is already in use (weights, workspaces) and `reserved` bytes still to be allocated besides the cache.
// Throws naming every number when no block of `block_bytes` fits.
size_t gpu_kv_budget(size_t total, size_t free, double utilization, size_t reserved, int64_t block_bytes);

// Device bytes to leave out of the KV cache for the decode CUDA graphs, from what capturing them took in a profile
// before the cache existed (ModelRunner::profile_decode_graphs): the measured bytes plus a margin of 1/8 of them
// and 16 MiB, since the real capture allocates anew and may land on other 2 MiB pages than the profile's did.
// Throws on a negative measurement.
size_t cuda_graph_reserve(int64_t profiled_bytes);

class KvCache {
 public:
  KvCache(const KvCacheShape& shape, int32_t num_blocks, DType dtype = DType::f32, Device device = Device::cpu());

  const KvCacheShape& shape() const { return shape_; }
  int32_t num_blocks() const { return num_blocks_; }
  Tensor& k(int64_t layer) { return k_.at(layer); }
  Tensor& v(int64_t layer) { return v_.at(layer); }

 private:
  KvCacheShape shape_;
  int32_t num_blocks_;
  std::vector<Tensor> k_, v_;  // per layer: [num_blocks, block_size, kv_heads, head_dim]
};

}  // namespace lattice
