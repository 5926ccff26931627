// Per-sequence block tables over one BlockAllocator. The scheduler asks it whether a sequence can grow
// and frees a sequence's blocks when it finishes or is preempted.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/kv_cache/block_allocator.h"

namespace lattice {

class BlockManager {
 public:
  BlockManager(int32_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return allocator_.num_blocks(); }
  int32_t num_free() const { return allocator_.num_free(); }
  int32_t blocks_for(int64_t tokens) const { return static_cast<int32_t>((tokens + block_size_ - 1) / block_size_); }

  // Blocks sequence `seq` holds (0 when it has none).
  int32_t blocks_of(int64_t seq) const;
  // Extra blocks sequence `seq` needs to hold `tokens` tokens in total.
  int32_t blocks_needed(int64_t seq, int64_t tokens) const;
  // Grows seq's table to hold `tokens` tokens; false (and nothing allocated) when blocks are short.
  bool grow(int64_t seq, int64_t tokens);
  void free(int64_t seq);
  const std::vector<int32_t>& table(int64_t seq) const;

 private:
  int32_t block_size_;
  BlockAllocator allocator_;
  std::unordered_map<int64_t, std::vector<int32_t>> tables_;
};

}  // namespace lattice
