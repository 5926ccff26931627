// Block allocation: reference counts, exhaustion without crashing, per-sequence tables.
#include <gtest/gtest.h>

#include <set>

#include "engine/kv_cache/block_manager.h"
#include "engine/kv_cache/kv_cache.h"

namespace lattice {
namespace {

TEST(BlockAllocator, HandsOutEveryBlockOnceThenReportsExhaustion) {
  BlockAllocator a(3);
  std::set<int32_t> got;
  for (int i = 0; i < 3; ++i) got.insert(*a.allocate());
  EXPECT_EQ(got, (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(a.num_free(), 0);
  EXPECT_FALSE(a.allocate().has_value());
}

TEST(BlockAllocator, SharedBlockReturnsAfterLastRelease) {
  BlockAllocator a(2);
  const int32_t b = *a.allocate();
  a.add_ref(b);
  EXPECT_EQ(a.ref_count(b), 2);
  a.release(b);
  EXPECT_EQ(a.num_free(), 1);
  a.release(b);
  EXPECT_EQ(a.num_free(), 2);
  EXPECT_THROW(a.release(b), Error);  // double free is caught
  EXPECT_THROW(a.add_ref(7), Error);
}

TEST(BlockManager, GrowsTablesAndRefusesWithoutPartialAllocation) {
  BlockManager m(4, 16);
  EXPECT_TRUE(m.grow(1, 17));  // 2 blocks
  EXPECT_EQ(m.table(1).size(), 2u);
  EXPECT_TRUE(m.grow(1, 32));  // still 2
  EXPECT_EQ(m.num_free(), 2);
  EXPECT_FALSE(m.grow(2, 49));  // needs 4, only 2 free: nothing taken
  EXPECT_EQ(m.num_free(), 2);
  EXPECT_EQ(m.blocks_needed(2, 49), 4);
  EXPECT_TRUE(m.grow(2, 20));
  EXPECT_EQ(m.num_free(), 0);
  m.free(1);
  EXPECT_EQ(m.num_free(), 2);
  EXPECT_THROW(m.table(1), Error);
}

TEST(KvCache, SizedFromBytes) {
  KvCacheShape s{4, 2, 8, 16};
  EXPECT_EQ(s.bytes_per_block(DType::f32), 2 * 4 * 16 * 2 * 8 * 4);
  EXPECT_EQ(s.blocks_in(10 * 8192 + 5, DType::f32), 10);
  EXPECT_THROW(s.blocks_in(100, DType::f32), Error);
  KvCache cache(s, 3);
  EXPECT_EQ(cache.k(3).shape(), (std::vector<int64_t>{3, 16, 2, 8}));
}

}  // namespace
}  // namespace lattice
