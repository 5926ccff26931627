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

// A GPU of 80 GiB with 20 GiB in use (weights, workspaces) and 1 GiB of step buffers still to come: at 0.9
// utilisation the cache gets 72 - 21 = 51 GiB; Llama-3-8B's bf16 block (32 layers x 16 tokens x 8 KV heads x 128
// x 2 (K, V) x 2 bytes = 2 MiB) then fits 26112 times.
TEST(KvCache, GpuBudgetIsUtilisationLessWhatIsUsedAndReserved) {
  constexpr size_t GiB = size_t{1} << 30;
  const KvCacheShape llama3{32, 8, 128, 16};
  const int64_t block = llama3.bytes_per_block(DType::bf16);
  EXPECT_EQ(block, 2 << 20);
  const size_t budget = gpu_kv_budget(80 * GiB, 60 * GiB, 0.9, GiB, block);
  EXPECT_EQ(budget, 51 * GiB);
  EXPECT_EQ(llama3.blocks_in(budget, DType::bf16), 51 * 512);
  // Weights that already take more than the utilisation allows: an error naming the numbers.
  try {
    gpu_kv_budget(80 * GiB, 5 * GiB, 0.9, 0, block);
    ADD_FAILURE() << "no error when the weights fill the device";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--gpu-memory-utilization 0.9 of 80 GiB"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gpu_kv_budget(GiB, 2 * GiB, 0.9, 0, block), Error);  // free > total: a broken query
}

// The decode graphs' reserve: the profile's bytes + 1/8 + 16 MiB. A profile of 800 MiB reserves 916 MiB, and the
// same GPU as above then gives the cache 51 GiB - 916 MiB: 25654 blocks of 2 MiB instead of 26112, exactly the
// reserve's 458 blocks fewer. An empty profile (graphs that took no new page) still keeps the 16 MiB margin.
TEST(KvCache, GpuBudgetLeavesTheDecodeGraphsReserve) {
  constexpr size_t GiB = size_t{1} << 30, MiB = size_t{1} << 20;
  EXPECT_EQ(cuda_graph_reserve(800 * MiB), 916 * MiB);
  EXPECT_EQ(cuda_graph_reserve(0), 16 * MiB);
  EXPECT_EQ(cuda_graph_reserve(7), 16 * MiB + 7);  // 7 / 8 rounds down
  EXPECT_THROW(cuda_graph_reserve(-1), Error);
  const KvCacheShape llama3{32, 8, 128, 16};
  const int64_t block = llama3.bytes_per_block(DType::bf16);
  const size_t budget = gpu_kv_budget(80 * GiB, 60 * GiB, 0.9, GiB + cuda_graph_reserve(800 * MiB), block);
  EXPECT_EQ(budget, 51 * GiB - 916 * MiB);
  EXPECT_EQ(llama3.blocks_in(budget, DType::bf16), 26112 - 458);
}

}  // namespace
}  // namespace lattice
