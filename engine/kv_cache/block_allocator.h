// Fixed-size KV blocks handed out from a free list, with reference counts so that blocks can be shared
// (e.g. a common prompt prefix); a block returns to the free list when its last reference is dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace lattice {

class BlockAllocator {
 public:
  explicit BlockAllocator(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }

  // A free block with reference count 1, or nullopt when every block is in use.
  std::optional<int32_t> allocate();
  void add_ref(int32_t block);
  void release(int32_t block);
  int32_t ref_count(int32_t block) const;

 private:
  void check_live(int32_t block) const;

  std::vector<int32_t> ref_counts_;
  std::vector<int32_t> free_;  // stack; lowest ids are handed out first
};

}  // namespace lattice
