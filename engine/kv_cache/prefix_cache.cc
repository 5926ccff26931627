#include "engine/kv_cache/prefix_cache.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

PrefixCache::PrefixCache(int32_t block_size, uint64_t salt) : block_size_(block_size), salt_(salt) {
  LATTICE_CHECK(block_size > 0, "KV block size must be positive, got ", block_size);
}

uint64_t PrefixCache::hash(uint64_t parent, const int32_t* tokens) const {
  uint64_t h = mix(mix(mix(parent) ^ salt_) ^ static_cast<uint64_t>(block_size_));
  for (int32_t i = 0; i < block_size_; ++i) h = mix(h ^ static_cast<uint32_t>(tokens[i]));
  return h;
}

std::optional<int32_t> PrefixCache::find(uint64_t hash, uint64_t parent, const int32_t* tokens) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  const Entry& e = by_block_.at(it->second);
  if (e.parent != parent || !std::equal(e.tokens.begin(), e.tokens.end(), tokens)) return std::nullopt;
  return it->second;
}

bool PrefixCache::insert(int32_t block, uint64_t hash, uint64_t parent, const int32_t* tokens) {
  LATTICE_CHECK(!contains(block), "KV block ", block, " is already in the prefix cache");
  if (!by_hash_.emplace(hash, block).second) return false;
  by_block_.emplace(block, Entry{hash, parent, std::vector<int32_t>(tokens, tokens + block_size_)});
  return true;
}

void PrefixCache::push_evictable(int32_t block) {
  LATTICE_CHECK(contains(block) && !is_evictable(block), "KV block ", block, " cannot become evictable");
  lru_pos_[block] = lru_.insert(lru_.end(), block);
}

void PrefixCache::remove_evictable(int32_t block) {
  auto it = lru_pos_.find(block);
  LATTICE_CHECK(it != lru_pos_.end(), "KV block ", block, " is not evictable");
  lru_.erase(it->second);
  lru_pos_.erase(it);
}

std::optional<int32_t> PrefixCache::evict() {
  if (lru_.empty()) return std::nullopt;
  const int32_t block = lru_.front();
  remove_evictable(block);
  by_hash_.erase(by_block_.at(block).hash);
  by_block_.erase(block);
  return block;
}

}  // namespace lattice
