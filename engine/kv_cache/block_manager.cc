#include "engine/kv_cache/block_manager.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice {

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, PrefixCaching caching)
    : block_size_(block_size), allocator_(num_blocks) {
  LATTICE_CHECK(block_size > 0, "KV block size must be positive, got ", block_size);
  if (caching.enabled) cache_.emplace(block_size, caching.salt);
}

int32_t BlockManager::blocks_of(int64_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : static_cast<int32_t>(it->second.table.size());
}

int32_t BlockManager::blocks_needed(int64_t seq, int64_t tokens) const {
  return std::max(0, blocks_for(tokens) - blocks_of(seq));
}

int32_t BlockManager::allocate() {
  if (std::optional<int32_t> block = allocator_.allocate()) return *block;
  const std::optional<int32_t> evicted = cache_ ? cache_->evict() : std::nullopt;
  LATTICE_CHECK(evicted.has_value(), "no KV block to allocate");
  allocator_.release(*evicted);  // the cache's reference was the last one
  ++evictions_;
  return *allocator_.allocate();
}

bool BlockManager::grow(int64_t seq, int64_t tokens) {
  const int32_t need = blocks_needed(seq, tokens);
  if (need > num_free()) return false;
  auto& table = seqs_[seq].table;
  for (int32_t i = 0; i < need; ++i) table.push_back(allocate());
  return true;
}

void BlockManager::free(int64_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  const std::vector<int32_t>& table = it->second.table;
  for (auto b = table.rbegin(); b != table.rend() - it->second.released; ++b) release(*b);  // leaves join the LRU first
  seqs_.erase(it);
}

void BlockManager::release(int32_t block) {
  allocator_.release(block);
  if (cached(block) && allocator_.ref_count(block) == 1) cache_->push_evictable(block);
}

void BlockManager::release_before(int64_t seq, int64_t position) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end() || position <= 0) return;
  SeqBlocks& s = it->second;
  const int32_t before = static_cast<int32_t>(std::min<int64_t>(position / block_size_, s.table.size()));
  for (; s.released < before; ++s.released) release(s.table[s.released]);
}

int32_t BlockManager::released_of(int64_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.released;
}

const std::vector<int32_t>& BlockManager::table(int64_t seq) const {
  auto it = seqs_.find(seq);
  LATTICE_CHECK(it != seqs_.end(), "sequence ", seq, " has no KV blocks");
  return it->second.table;
}

int32_t BlockManager::users(int32_t block) const {
  return allocator_.ref_count(block) - (cached(block) ? 1 : 0);
}

int32_t BlockManager::reclaimable(const std::vector<int64_t>& seqs) const {
  std::unordered_map<int32_t, int32_t> held;  // block -> references among `seqs`
  for (int64_t s : seqs) {
    auto it = seqs_.find(s);
    if (it == seqs_.end()) continue;
    const std::vector<int32_t>& table = it->second.table;
    for (auto b = table.begin() + it->second.released; b != table.end(); ++b) ++held[*b];
  }
  int32_t n = num_free();
  for (const auto& [b, refs] : held)
    if (users(b) == refs) ++n;
  return n;
}

int64_t BlockManager::attach_prefix(int64_t seq, const std::vector<int32_t>& tokens, int64_t max_tokens) {
  LATTICE_CHECK(blocks_of(seq) == 0, "sequence ", seq, " already holds KV blocks");
  if (!cache_) return 0;
  SeqBlocks& s = seqs_[seq];
  const int64_t whole = std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size())) / block_size_;
  for (int64_t i = 0; i < whole; ++i) {
    const int32_t* block_tokens = tokens.data() + i * block_size_;
    const uint64_t h = cache_->hash(s.last_hash, block_tokens);
    const std::optional<int32_t> block = cache_->find(h, s.last_hash, block_tokens);
    if (!block) break;
    if (cache_->is_evictable(*block)) cache_->remove_evictable(*block);
    allocator_.add_ref(*block);
    s.table.push_back(*block);
    s.last_hash = h;
    ++s.hashed;
  }
  const int64_t hit = static_cast<int64_t>(s.hashed) * block_size_;
  if (s.table.empty()) seqs_.erase(seq);
  return hit;
}

int64_t BlockManager::cached_prefix(const std::vector<int32_t>& tokens, int64_t max_tokens) const {
  if (!cache_) return 0;
  const int64_t whole = std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size())) / block_size_;
  uint64_t parent = PrefixCache::kRootHash;
  int64_t found = 0;
  for (; found < whole; ++found) {
    const int32_t* block_tokens = tokens.data() + found * block_size_;
    const uint64_t h = cache_->hash(parent, block_tokens);
    if (!cache_->find(h, parent, block_tokens)) break;
    parent = h;
  }
  return found * block_size_;
}

std::vector<uint64_t> BlockManager::chain_hashes(const std::vector<int32_t>& tokens, int64_t blocks) const {
  std::vector<uint64_t> out;
  if (!cache_) return out;
  LATTICE_CHECK(blocks * block_size_ <= static_cast<int64_t>(tokens.size()), blocks, " blocks of ", block_size_,
                " tokens need more than ", tokens.size(), " tokens");
  uint64_t h = PrefixCache::kRootHash;
  for (int64_t i = 0; i < blocks; ++i) out.push_back(h = cache_->hash(h, tokens.data() + i * block_size_));
  return out;
}

void BlockManager::cache_computed(int64_t seq, const std::vector<int32_t>& tokens, int64_t computed) {
  if (!cache_) return;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  SeqBlocks& s = it->second;
  LATTICE_CHECK(computed <= static_cast<int64_t>(tokens.size()), "sequence ", seq, " computed ", computed,
                " of ", tokens.size(), " tokens");
  const int64_t full = std::min<int64_t>(computed / block_size_, static_cast<int64_t>(s.table.size()));
  for (; s.hashed < full; ++s.hashed) {
    const int32_t* block_tokens = tokens.data() + static_cast<int64_t>(s.hashed) * block_size_;
    const uint64_t h = cache_->hash(s.last_hash, block_tokens);
    const int32_t block = s.table[s.hashed];
    const bool held = s.hashed >= s.released;  // a released block may hold another sequence's K/V by now
    if (held && !cached(block) && cache_->insert(block, h, s.last_hash, block_tokens)) allocator_.add_ref(block);
    s.last_hash = h;
  }
}

}  // namespace lattice
