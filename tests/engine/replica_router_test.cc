// The data-parallel router's choice rule (engine/scheduler/replica_router.h), without a model.
#include <gtest/gtest.h>

#include "engine/scheduler/replica_router.h"

namespace lattice {
namespace {

ReplicaLoad load(int64_t waiting, int64_t free_blocks, int64_t running = 0, int64_t cached = 0) {
  return {waiting, running, free_blocks, cached};
}

TEST(ReplicaRouter, FewestQueuedThenMostFreeBlocksThenFewestRunningThenLowestIndex) {
  EXPECT_EQ(choose_replica({load(2, 100), load(1, 10)}), 1);
  EXPECT_EQ(choose_replica({load(0, 10), load(0, 50)}), 1);
  EXPECT_EQ(choose_replica({load(0, 50, 3), load(0, 50, 2), load(0, 50, 2)}), 1);
  EXPECT_EQ(choose_replica({load(0, 50, 2), load(0, 50, 2)}), 0);
}

TEST(ReplicaRouter, ALongerCachedPrefixWinsUnlessItsQueueIsLongerBySlackOrMore) {
  EXPECT_EQ(choose_replica({load(0, 90), load(4, 10, 8, 32)}, 4), 1);  // 4 more queued: still within the slack
  EXPECT_EQ(choose_replica({load(0, 90), load(5, 10, 8, 32)}, 4), 0);  // 5 more: too busy
  // The slack counts from the least loaded replica's queue, not from zero.
  EXPECT_EQ(choose_replica({load(1, 90, 0, 16), load(3, 10, 0, 32)}, 2), 1);
  EXPECT_EQ(choose_replica({load(1, 90, 0, 16), load(3, 10, 0, 32)}, 1), 0);
  // Among replicas with the same prefix, the less loaded; a prefix that the least loaded replica also has is
  // no reason to move.
  EXPECT_EQ(choose_replica({load(2, 50, 0, 32), load(1, 50, 0, 32), load(0, 50, 0, 0)}, 4), 1);
  EXPECT_EQ(choose_replica({load(1, 50, 0, 32), load(0, 50, 0, 32)}, 4), 1);
  EXPECT_EQ(choose_replica({load(0, 50)}), 0);
}

}  // namespace
}  // namespace lattice
