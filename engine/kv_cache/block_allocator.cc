#include "engine/kv_cache/block_allocator.h"

#include "engine/core/error.h"

namespace lattice {

BlockAllocator::BlockAllocator(int32_t num_blocks) : ref_counts_(num_blocks, 0) {
  LATTICE_CHECK(num_blocks > 0, "the KV cache needs at least one block, got ", num_blocks);
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::optional<int32_t> BlockAllocator::allocate() {
  if (free_.empty()) return std::nullopt;
  int32_t block = free_.back();
  free_.pop_back();
  ref_counts_[block] = 1;
  return block;
}

void BlockAllocator::check_live(int32_t block) const {
  LATTICE_CHECK(block >= 0 && block < num_blocks(), "KV block ", block, " out of range [0, ", num_blocks(), ")");
  LATTICE_CHECK(ref_counts_[block] > 0, "KV block ", block, " is not allocated");
}

void BlockAllocator::add_ref(int32_t block) {
  check_live(block);
  ++ref_counts_[block];
}

void BlockAllocator::release(int32_t block) {
  check_live(block);
  if (--ref_counts_[block] == 0) free_.push_back(block);
}

int32_t BlockAllocator::ref_count(int32_t block) const {
  LATTICE_CHECK(block >= 0 && block < num_blocks(), "KV block ", block, " out of range");
  return ref_counts_[block];
}

}  // namespace lattice
