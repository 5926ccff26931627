#include "engine/kv_cache/block_manager.h"

#include "engine/core/error.h"

namespace lattice {

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size) : block_size_(block_size), allocator_(num_blocks) {
  LATTICE_CHECK(block_size > 0, "KV block size must be positive, got ", block_size);
}

int32_t BlockManager::blocks_of(int64_t seq) const {
  auto it = tables_.find(seq);
  return it == tables_.end() ? 0 : static_cast<int32_t>(it->second.size());
}

int32_t BlockManager::blocks_needed(int64_t seq, int64_t tokens) const {
  auto it = tables_.find(seq);
  int32_t have = it == tables_.end() ? 0 : static_cast<int32_t>(it->second.size());
  return std::max(0, blocks_for(tokens) - have);
}

bool BlockManager::grow(int64_t seq, int64_t tokens) {
  const int32_t need = blocks_needed(seq, tokens);
  if (need > allocator_.num_free()) return false;
  auto& table = tables_[seq];
  for (int32_t i = 0; i < need; ++i) table.push_back(*allocator_.allocate());
  return true;
}

void BlockManager::free(int64_t seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  for (int32_t block : it->second) allocator_.release(block);
  tables_.erase(it);
}

const std::vector<int32_t>& BlockManager::table(int64_t seq) const {
  auto it = tables_.find(seq);
  LATTICE_CHECK(it != tables_.end(), "sequence ", seq, " has no KV blocks");
  return it->second;
}

}  // namespace lattice
