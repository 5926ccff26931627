// Per-sequence block tables over one BlockAllocator. The scheduler asks it whether a sequence can grow
// and frees a sequence's blocks when it finishes or is preempted.
//
// With prefix caching, a sequence's full blocks enter a PrefixCache once computed (cache_computed), and a new
// sequence starts from the cached blocks of its longest cached prefix (attach_prefix). The cache holds one
// reference on every block it indexes, so a block is shared by the sequences using it plus the cache; when no
// sequence uses it any more it stays cached (evictable) and is evicted, least recently released first, only
// when an allocation finds the free list empty. Sequences release their tables last block first, so of one
// sequence's blocks the leaves go first. Shared blocks are always full and computed: a sequence writes only
// past its hit, into blocks of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/kv_cache/block_allocator.h"
#include "engine/kv_cache/prefix_cache.h"

namespace lattice {

struct PrefixCaching {
  bool enabled = false;
  uint64_t salt = 0;  // identifies the model (and anything else that changes K/V) in every block's hash
};

class BlockManager {
 public:
  BlockManager(int32_t num_blocks, int32_t block_size, PrefixCaching caching = {});

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return allocator_.num_blocks(); }
  // Blocks an allocation can take: never allocated or released, plus cached blocks no sequence uses.
  int32_t num_free() const { return allocator_.num_free() + num_evictable(); }
  int32_t blocks_for(int64_t tokens) const { return static_cast<int32_t>((tokens + block_size_ - 1) / block_size_); }
  bool caching() const { return cache_.has_value(); }
  int32_t num_cached() const { return cache_ ? cache_->size() : 0; }
  int32_t num_evictable() const { return cache_ ? cache_->num_evictable() : 0; }
  int64_t evictions() const { return evictions_; }  // cached blocks dropped to make room, so far

  // Blocks sequence `seq` holds (0 when it has none).
  int32_t blocks_of(int64_t seq) const;
  // Extra blocks sequence `seq` needs to hold `tokens` tokens in total.
  int32_t blocks_needed(int64_t seq, int64_t tokens) const;
  // Grows seq's table to hold `tokens` tokens; false (and nothing allocated) when blocks are short.
  bool grow(int64_t seq, int64_t tokens);
  // Releases seq's blocks (cached ones stay cached).
  void free(int64_t seq);
  // Releases seq's blocks that lie wholly before token `position` (a sliding window has moved past them; cached
  // ones stay cached). Their table entries stay, stale: the table keeps its length and positions, and attention
  // never follows an entry before its window. free() and reclaimable() skip them.
  void release_before(int64_t seq, int64_t position);
  // Blocks of seq released by release_before (its first ones).
  int32_t released_of(int64_t seq) const;
  const std::vector<int32_t>& table(int64_t seq) const;
  // Sequences holding `block` (the cache's own reference not counted).
  int32_t users(int32_t block) const;
  // Blocks an allocation could take after every sequence in `seqs` freed its table.
  int32_t reclaimable(const std::vector<int64_t>& seqs) const;

  // Gives `seq`, which must hold no blocks, the cached blocks of the longest cached prefix of
  // tokens[0, max_tokens) (whole blocks only) and returns the tokens they cover (0 without caching).
  int64_t attach_prefix(int64_t seq, const std::vector<int32_t>& tokens, int64_t max_tokens);
  // The tokens attach_prefix would give a new sequence now (whole cached blocks of tokens[0, max_tokens)),
  // without taking them: how much of a prompt this cache holds (a router's question).
  int64_t cached_prefix(const std::vector<int32_t>& tokens, int64_t max_tokens) const;
  // The chain hashes of the first `blocks` full blocks of `tokens` (empty without caching).
  std::vector<uint64_t> chain_hashes(const std::vector<int32_t>& tokens, int64_t blocks) const;
  // Indexes seq's full blocks among its first `computed` tokens (whose K/V are written); `tokens` are the
  // sequence's tokens so far. A block whose content is already cached under another block stays private.
  void cache_computed(int64_t seq, const std::vector<int32_t>& tokens, int64_t computed);

 private:
  struct SeqBlocks {
    std::vector<int32_t> table;
    int32_t hashed = 0;                        // leading blocks whose chain hash is known
    int32_t released = 0;                      // leading blocks given back by release_before
    uint64_t last_hash = PrefixCache::kRootHash;  // hash of block hashed - 1
  };
  int32_t allocate();
  void release(int32_t block);  // drops one reference; a cached block no sequence uses becomes evictable
  bool cached(int32_t block) const { return cache_ && cache_->contains(block); }

  int32_t block_size_;
  BlockAllocator allocator_;
  std::optional<PrefixCache> cache_;
  std::unordered_map<int64_t, SeqBlocks> seqs_;
  int64_t evictions_ = 0;
};

}  // namespace lattice
