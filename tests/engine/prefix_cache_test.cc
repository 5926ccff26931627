// Prefix caching in the block manager: which blocks a new sequence reuses, the reference counts through
// sharing and release, the order in which cached blocks are evicted when memory is needed, and the blocks a
// sliding window releases.
#include <gtest/gtest.h>

#include <numeric>

#include "engine/kv_cache/block_manager.h"

namespace lattice {
namespace {

std::vector<int32_t> iota_tokens(int32_t n, int32_t first) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

// Runs a sequence's tokens into the cache as the scheduler does: blocks for all, then all computed.
void compute(BlockManager& m, int64_t seq, const std::vector<int32_t>& tokens) {
  ASSERT_TRUE(m.grow(seq, static_cast<int64_t>(tokens.size())));
  m.cache_computed(seq, tokens, static_cast<int64_t>(tokens.size()));
}

TEST(PrefixCache, TheHashChainsParentTokensBlockSizeAndSalt) {
  const std::vector<int32_t> t = {5, 6, 7, 8};
  const PrefixCache c(4, 1);
  const uint64_t h = c.hash(PrefixCache::kRootHash, t.data());
  EXPECT_EQ(h, PrefixCache(4, 1).hash(PrefixCache::kRootHash, t.data()));
  EXPECT_NE(h, c.hash(h, t.data()));                                        // another parent
  EXPECT_NE(h, PrefixCache(4, 2).hash(PrefixCache::kRootHash, t.data()));  // another model
  EXPECT_NE(h, PrefixCache(3, 1).hash(PrefixCache::kRootHash, t.data()));  // another block size
  const std::vector<int32_t> u = {5, 6, 7, 9};
  EXPECT_NE(h, c.hash(PrefixCache::kRootHash, u.data()));
}

TEST(PrefixCache, ALookupComparesTokensAndParentNotOnlyTheHash) {
  PrefixCache c(2, 0);
  const std::vector<int32_t> t = {1, 2}, u = {3, 4};
  const uint64_t h = c.hash(PrefixCache::kRootHash, t.data());
  ASSERT_TRUE(c.insert(7, h, PrefixCache::kRootHash, t.data()));
  EXPECT_EQ(c.find(h, PrefixCache::kRootHash, t.data()), std::optional<int32_t>(7));
  EXPECT_EQ(c.find(h, PrefixCache::kRootHash, u.data()), std::nullopt);  // as if u collided with t
  EXPECT_EQ(c.find(h, 99, t.data()), std::nullopt);
  EXPECT_FALSE(c.insert(8, h, PrefixCache::kRootHash, t.data()));  // the content already has a block
}

TEST(BlockManagerPrefix, ANewSequenceReusesItsLongestCachedPrefixInWholeBlocks) {
  BlockManager m(16, 4, {true, 0});
  const std::vector<int32_t> a = iota_tokens(10, 0);  // blocks [0..3] [4..7] and a partial one
  compute(m, 1, a);
  EXPECT_EQ(m.num_cached(), 2);  // only full blocks

  std::vector<int32_t> b(a.begin(), a.begin() + 8);
  b.insert(b.end(), {50, 51, 52});
  EXPECT_EQ(m.attach_prefix(2, b, 10), 8);
  EXPECT_EQ(m.table(2), std::vector<int32_t>(m.table(1).begin(), m.table(1).begin() + 2));
  EXPECT_EQ(m.users(m.table(1)[0]), 2);
  EXPECT_EQ(m.users(m.table(1)[2]), 1);  // the partial block stays private

  EXPECT_EQ(m.attach_prefix(3, a, 7), 4);  // at most 7 tokens: one whole block
  std::vector<int32_t> c = a;
  c[1] = 99;  // the first block differs, so the second (same tokens, other parent) must miss too
  EXPECT_EQ(m.attach_prefix(4, c, 10), 0);
  EXPECT_EQ(m.blocks_of(4), 0);

  // Growing past the hit takes fresh blocks: the shared ones are never written.
  ASSERT_TRUE(m.grow(2, 11));
  EXPECT_EQ(m.blocks_of(2), 3);
  EXPECT_EQ(m.users(m.table(2)[2]), 1);
  EXPECT_NE(m.table(2)[2], m.table(1)[2]);
}

TEST(BlockManagerPrefix, ReferenceCountsFollowSharingAndRelease) {
  BlockManager m(8, 2, {true, 0});
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};
  compute(m, 1, a);  // blocks: two cached, one partial
  ASSERT_EQ(m.attach_prefix(2, a, 4), 4);
  ASSERT_TRUE(m.grow(2, 5));
  const std::vector<int32_t> shared = {m.table(1)[0], m.table(1)[1]};
  // Freeing 1 alone gives back only its partial block; freeing both gives back all five.
  EXPECT_EQ(m.reclaimable({1}), m.num_free() + 1);
  EXPECT_EQ(m.reclaimable({1, 2}), m.num_free() + 4);
  m.free(1);
  for (int32_t b : shared) EXPECT_EQ(m.users(b), 1);
  EXPECT_EQ(m.num_evictable(), 0);
  m.free(2);
  for (int32_t b : shared) EXPECT_EQ(m.users(b), 0);
  EXPECT_EQ(m.num_evictable(), 2);
  EXPECT_EQ(m.num_cached(), 2);
  EXPECT_EQ(m.num_free(), 8);  // cached blocks no one uses still count as free
  // Free again (a cancel after a finish) is a no-op.
  m.free(2);
  EXPECT_EQ(m.num_free(), 8);
}

TEST(BlockManagerPrefix, EvictsOnlyWhenNeededLeastRecentlyReleasedAndLeavesFirst) {
  BlockManager m(5, 2, {true, 0});
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10};
  compute(m, 1, a);
  m.free(1);  // LRU: a's leaf, a's middle, a's root
  compute(m, 2, b);
  m.free(2);  // then b's leaf, b's root; the free list is empty now
  EXPECT_EQ(m.num_cached(), 5);
  EXPECT_EQ(m.evictions(), 0);

  // A hit revives a's root; growing past it evicts the oldest released block, a's leaf.
  ASSERT_EQ(m.attach_prefix(3, {1, 2, 30, 31}, 3), 2);
  ASSERT_TRUE(m.grow(3, 4));
  EXPECT_EQ(m.evictions(), 1);
  m.free(3);  // a's root is now the most recently released
  // Three blocks: the free one (3's private block), then a's middle and b's leaf.
  ASSERT_TRUE(m.grow(4, 6));
  EXPECT_EQ(m.evictions(), 3);
  m.free(4);
  EXPECT_EQ(m.attach_prefix(5, a, 6), 2);  // a's root survived, its middle did not
  EXPECT_EQ(m.attach_prefix(6, b, 4), 2);  // b's root survived, its leaf did not
  m.free(5);
  m.free(6);
  EXPECT_EQ(m.num_free(), 5);
}

TEST(BlockManagerPrefix, WithoutCachingNothingIsKept) {
  BlockManager m(4, 2);
  const std::vector<int32_t> a = {1, 2, 3, 4};
  compute(m, 1, a);
  m.free(1);
  EXPECT_EQ(m.num_cached(), 0);
  EXPECT_EQ(m.attach_prefix(2, a, 3), 0);
  EXPECT_EQ(m.num_free(), 4);
}

// A sliding window moving past a sequence's first blocks gives them back at once: uncached ones to the free
// list, cached ones to the evictable LRU (still found by a later prompt); the table keeps its length, and the
// sequence's free() and the preemption count (reclaimable) skip what is already released.
TEST(BlockManagerWindow, BlocksBeforeAWindowAreReleasedOnceAndCachedOnesStayFindable) {
  for (const bool caching : {false, true}) {
    SCOPED_TRACE(caching ? "prefix caching" : "no caching");
    BlockManager m(6, 2, {caching, 0});
    const std::vector<int32_t> a = iota_tokens(8, 10);
    compute(m, 1, a);  // 4 blocks
    EXPECT_EQ(m.num_free(), 2);
    m.release_before(1, 1);  // position 1 is inside block 0: nothing is wholly before it
    EXPECT_EQ(m.released_of(1), 0);
    m.release_before(1, 5);  // blocks 0 and 1 end before position 5
    EXPECT_EQ(m.released_of(1), 2);
    EXPECT_EQ(m.num_free(), 4);
    EXPECT_EQ(m.blocks_of(1), 4);  // stale entries keep the table's positions
    m.release_before(1, 3);        // an earlier position releases nothing again
    EXPECT_EQ(m.num_free(), 4);
    EXPECT_EQ(m.reclaimable({1}), 6);
    EXPECT_EQ(m.attach_prefix(2, a, 7), caching ? 6 : 0);  // the released blocks' K/V are still cached
    m.free(2);
    m.free(1);
    EXPECT_EQ(m.num_free(), 6);
  }
}

// A block released before its K/V were indexed (its id may already hold another sequence's K/V) never enters
// the cache under this sequence's tokens.
TEST(BlockManagerWindow, AReleasedBlockIsNeverIndexedLater) {
  BlockManager m(4, 2, {true, 0});
  const std::vector<int32_t> a = iota_tokens(6, 1);
  ASSERT_TRUE(m.grow(1, 6));
  m.release_before(1, 3);  // block 0, before cache_computed saw it
  m.cache_computed(1, a, 6);
  EXPECT_EQ(m.num_cached(), 2);
  EXPECT_EQ(m.attach_prefix(2, a, 5), 0);  // block 0's tokens are not findable, so no prefix is
  m.free(1);
  EXPECT_EQ(m.num_free(), 4);
}

}  // namespace
}  // namespace lattice
