// Grid arithmetic without MPI: topology, split rules and pipeline layer ranges.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "parallel/sharding.h"
#include "parallel/topology.h"

namespace lattice::parallel {
namespace {

TEST(Topology, ConsecutiveRanksFormATpGroup) {
  const Topology t = Topology::make(8, 5, 4, 2, 1, 1, 4);
  EXPECT_EQ(t.tp_rank, 1);
  EXPECT_EQ(t.pp_rank, 1);
  EXPECT_TRUE(t.is_last_stage());
  EXPECT_FALSE(t.is_first_stage());
  EXPECT_EQ(t.world_rank(0, 1), 1);
  EXPECT_EQ(t.sampler_rank(), 4);
  EXPECT_EQ(t.device_id, 1);
  try {
    Topology::make(6, 0, 4, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the job has 6 ranks but tp 4 x pp 2 = 8"), std::string::npos);
  }
}

// dp-major: replica 2 of tp 2 x pp 2 holds world ranks 8..11; rank 11 is its last stage's TP rank 1.
TEST(Topology, ReplicasAreConsecutiveBlocksOfTpTimesPpRanks) {
  const Topology t = Topology::make(16, 11, 2, 2, 4);
  EXPECT_EQ(t.dp_rank, 2);
  EXPECT_EQ(t.pp_rank, 1);
  EXPECT_EQ(t.tp_rank, 1);
  EXPECT_EQ(t.world_rank(0, 1), 9);
  EXPECT_EQ(t.sampler_rank(), 10);
  EXPECT_EQ(t.leader_rank(3), 12);
  EXPECT_EQ(t.sampler_rank(1), 6);
  EXPECT_FALSE(t.is_replica_leader());
  EXPECT_TRUE(Topology::make(16, 8, 2, 2, 4).is_replica_leader());
  EXPECT_EQ(t.describe(), "rank 11 (dp 2/4, tp 1/2, pp 1/2, local 0/1)");
  try {
    Topology::make(3, 0, 2, 1, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the job has 3 ranks but tp 2 x pp 1 x dp 2 = 4; launch with mpirun -np 4"),
              std::string::npos) << e.what();
  }
}

TEST(Sharding, ColumnRowAndVocabSplitsAreEvenBlocks) {
  const Slice c = shard_slice(SplitRule::column, {128, 64}, 1, 4, 4, "q");
  EXPECT_EQ(c.dim, 0);
  EXPECT_EQ(c.begin, 32);
  EXPECT_EQ(c.end, 64);
  const Slice r = shard_slice(SplitRule::row, {64, 352}, 3, 4, 4, "down");
  EXPECT_EQ(r.dim, 1);
  EXPECT_EQ(r.begin, 264);
  EXPECT_EQ(r.end, 352);
  EXPECT_EQ(sliced_shape({64, 352}, r), (std::vector<int64_t>{64, 88}));
  EXPECT_EQ(shard_slice(SplitRule::replicated, {128}, 2, 4, 4, "norm").dim, -1);
  EXPECT_EQ(shard_slice(SplitRule::column, {128, 64}, 0, 1, 4, "q").dim, -1);  // tp = 1: whole tensor
}

TEST(Sharding, KvHeadsAreSplitOrReplicated) {
  // 4 KV heads of 16 rows: tp 2 splits them two per rank; tp 8 gives each pair of ranks one head.
  const Slice split = shard_slice(SplitRule::kv_heads, {64, 128}, 1, 2, 4, "k");
  EXPECT_EQ(split.begin, 32);
  EXPECT_EQ(split.end, 64);
  for (int rank = 0; rank < 8; ++rank) {
    const Slice s = shard_slice(SplitRule::kv_heads, {64, 128}, rank, 8, 4, "k");
    EXPECT_EQ(s.begin, rank / 2 * 16) << "rank " << rank;
    EXPECT_EQ(s.end, rank / 2 * 16 + 16) << "rank " << rank;
  }
  EXPECT_THROW(shard_slice(SplitRule::kv_heads, {48, 128}, 0, 2, 3, "k"), Error);  // 3 heads over tp 2
}

TEST(Sharding, FirstRankWeightsAreWholeOnRankZeroAndAbsentElsewhere) {
  for (int tp : {1, 2, 4}) {
    for (int rank = 0; rank < tp; ++rank) {
      const Slice s = shard_slice(SplitRule::first_rank, {128}, rank, tp, 4, "o_bias");
      EXPECT_EQ(s.held, rank == 0) << "tp " << tp << " rank " << rank;
      EXPECT_EQ(sliced_shape({128}, s), (std::vector<int64_t>{rank == 0 ? 128 : 0})) << "tp " << tp << " rank " << rank;
    }
  }
  EXPECT_TRUE(shard_slice(SplitRule::kv_heads, {64, 128}, 3, 8, 4, "k").held);  // replicated heads are held
}

TEST(Sharding, VocabShardsAreCeilRowsWithTheLastPadded) {
  // 701 over tp 8: shards of 88 rows; rank 7 reads [616, 701) and pads 3 rows. Together the ranks read every row
  // once, and every rank's tensor has 88 rows.
  EXPECT_EQ(vocab_shard_size(701, 8), 88);
  int64_t next = 0;
  for (int rank = 0; rank < 8; ++rank) {
    const Slice s = shard_slice(SplitRule::vocab, {701, 64}, rank, 8, 4, "embed");
    EXPECT_EQ(s.dim, 0);
    EXPECT_EQ(s.begin, next) << "rank " << rank;
    EXPECT_EQ(s.padding, rank == 7 ? 3 : 0) << "rank " << rank;
    EXPECT_EQ(held_shape({701, 64}, s), (std::vector<int64_t>{88, 64})) << "rank " << rank;
    next = s.end;
  }
  EXPECT_EQ(next, 701);
  // 10 over tp 8: shards of 2; ranks 5-7 read nothing and hold 2 rows of zeros.
  const Slice empty = shard_slice(SplitRule::vocab, {10, 64}, 6, 8, 4, "embed");
  EXPECT_EQ(empty.begin, 10);
  EXPECT_EQ(empty.end, 10);
  EXPECT_EQ(empty.padding, 2);
  EXPECT_EQ(sliced_shape({10, 64}, empty), (std::vector<int64_t>{0, 64}));
  // A divisible vocabulary has no padding (512 over 4: 128 rows each); tp 1 holds the whole table.
  const Slice even = shard_slice(SplitRule::vocab, {512, 64}, 3, 4, 4, "embed");
  EXPECT_EQ(even.begin, 384);
  EXPECT_EQ(even.end, 512);
  EXPECT_EQ(even.padding, 0);
  EXPECT_EQ(shard_slice(SplitRule::vocab, {701, 64}, 0, 1, 4, "embed").dim, -1);
}

TEST(Sharding, IndivisibleSplitsNameTheNumbers) {
  try {
    shard_slice(SplitRule::column, {352, 128}, 0, 3, 4, "gate");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot split gate: its output dimension (352) is not divisible by tp=3"),
              std::string::npos)
        << e.what();
  }
}

TEST(PipelineLayers, EvenSplitsAndExplicitCounts) {
  EXPECT_EQ(pipeline_layer_bounds(32, 3, {}), (std::vector<int64_t>{0, 10, 21, 32}));
  EXPECT_EQ(pipeline_layer_bounds(4, 4, {}), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pipeline_layer_bounds(32, 3, {12, 10, 10}), (std::vector<int64_t>{0, 12, 22, 32}));
  EXPECT_THROW(pipeline_layer_bounds(4, 8, {}), Error);
  EXPECT_THROW(pipeline_layer_bounds(32, 3, {10, 10, 10}), Error);
  EXPECT_THROW(pipeline_layer_bounds(32, 2, {32, 0}), Error);
}

}  // namespace
}  // namespace lattice::parallel
