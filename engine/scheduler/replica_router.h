// Which data-parallel replica a new request goes to (rank 0's router; engine/scheduler/replica_coordinator.h).
//
// The least loaded replica is the one with the fewest queued requests (queued requests wait for KV blocks or
// for a place in the batch), then the most free KV blocks, then the fewest running sequences, then the lowest
// index. With prefix caching, the replica whose cache holds the longest prefix of the prompt wins instead,
// unless its queue is longer than the least loaded replica's by more than `prefix_slack` requests: a prefix
// hit saves its prefill, but not the wait behind a long queue.
#pragma once

#include <cstdint>
#include <vector>

namespace lattice {

// What the router knows of one replica when a request arrives.
struct ReplicaLoad {
  int64_t waiting = 0;        // requests queued: not admitted yet, or preempted
  int64_t running = 0;        // sequences in the running batch
  int64_t free_blocks = 0;    // KV blocks an allocation can take
  int64_t cached_tokens = 0;  // prompt tokens of this request in the replica's prefix cache
};

constexpr int64_t kDefaultPrefixSlack = 4;

// The chosen replica's index; `loads` must not be empty.
int choose_replica(const std::vector<ReplicaLoad>& loads, int64_t prefix_slack = kDefaultPrefixSlack);

}  // namespace lattice
