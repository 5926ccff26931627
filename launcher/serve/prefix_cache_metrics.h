// The prefix cache on /metrics (summed over the data-parallel replicas), brought up to date by the serve loop
// from the schedulers' counters:
//   lattice_prefix_cache_queries_total    prompt tokens of admitted sequences looked up (counter)
//   lattice_prefix_cache_hits_total       of those, tokens reused from the cache instead of computed (counter)
//   lattice_prefix_cache_hit_rate         hits / queries since start (gauge, 0 before any query)
//   lattice_prefix_cache_blocks           KV blocks the cache indexes, in use or evictable (gauge)
//   lattice_prefix_cache_evictions_total  cached blocks dropped to make room (counter)
#pragma once

#include <cstdint>

#include "engine/scheduler/replica_coordinator.h"
#include "launcher/serve/metrics.h"

namespace lattice::serve {

class PrefixCacheMetrics {
 public:
  explicit PrefixCacheMetrics(Metrics& metrics);  // declares the families, at zero
  // Called on the serve loop's thread after steps; counters advance by what changed since the last call.
  void update(const ReplicaCoordinator& coordinator);

 private:
  Metrics& metrics_;
  int64_t queries_ = 0, hits_ = 0, evictions_ = 0;
};

}  // namespace lattice::serve
