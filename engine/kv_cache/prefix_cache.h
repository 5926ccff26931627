// The content index of automatic prefix caching: full KV blocks by a hash chain over (the parent block's hash,
// the block's tokens, the block size, a model salt), so that a sequence whose prompt starts with tokens already
// in the cache reuses their blocks. Entries keep their tokens and parent hash, and a lookup compares them, so a
// hash collision is a miss, never wrong K/V. Also keeps the evictable blocks (cached, used by no sequence) in
// least-recently-released order; BlockManager owns the blocks and the reference counts.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

namespace lattice {

class PrefixCache {
 public:
  PrefixCache(int32_t block_size, uint64_t salt);

  // The chain hash of the full block `tokens[0, block_size)` following a block of hash `parent`
  // (kRootHash for a sequence's first block).
  static constexpr uint64_t kRootHash = 0;
  uint64_t hash(uint64_t parent, const int32_t* tokens) const;

  // The block cached under `hash` whose parent and tokens match, or nullopt.
  std::optional<int32_t> find(uint64_t hash, uint64_t parent, const int32_t* tokens) const;
  // Records `block` under `hash`; false (nothing recorded) when the hash already names a block.
  bool insert(int32_t block, uint64_t hash, uint64_t parent, const int32_t* tokens);
  bool contains(int32_t block) const { return by_block_.count(block) != 0; }
  int32_t size() const { return static_cast<int32_t>(by_block_.size()); }

  // The LRU of cached blocks no sequence holds: released blocks join at the back, evictions take the front.
  void push_evictable(int32_t block);
  void remove_evictable(int32_t block);  // a hit revives it
  bool is_evictable(int32_t block) const { return lru_pos_.count(block) != 0; }
  int32_t num_evictable() const { return static_cast<int32_t>(lru_.size()); }
  // Drops the least recently released evictable block from the index and returns it (the caller frees it);
  // nullopt when none is evictable.
  std::optional<int32_t> evict();

 private:
  struct Entry {
    uint64_t hash;
    uint64_t parent;
    std::vector<int32_t> tokens;
  };
  int32_t block_size_;
  uint64_t salt_;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_map<int32_t, Entry> by_block_;
  std::list<int32_t> lru_;
  std::unordered_map<int32_t, std::list<int32_t>::iterator> lru_pos_;
};

}  // namespace lattice
