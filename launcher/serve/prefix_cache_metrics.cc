#include "launcher/serve/prefix_cache_metrics.h"

namespace lattice::serve {

PrefixCacheMetrics::PrefixCacheMetrics(Metrics& metrics) : metrics_(metrics) {
  using T = Metrics::Type;
  metrics_.describe("lattice_prefix_cache_queries_total", T::counter,
                    "Prompt tokens of admitted sequences looked up in the prefix cache");
  metrics_.describe("lattice_prefix_cache_hits_total", T::counter,
                    "Prompt tokens whose KV came from the prefix cache instead of being computed");
  metrics_.describe("lattice_prefix_cache_hit_rate", T::gauge, "Prefix cache hits / queries since start");
  metrics_.describe("lattice_prefix_cache_blocks", T::gauge, "KV blocks held by the prefix cache (used or evictable)");
  metrics_.describe("lattice_prefix_cache_evictions_total", T::counter, "Cached KV blocks evicted to make room");
  for (const char* c : {"lattice_prefix_cache_queries_total", "lattice_prefix_cache_hits_total",
                        "lattice_prefix_cache_evictions_total"})
    metrics_.add(c, {}, 0);
  metrics_.set("lattice_prefix_cache_hit_rate", 0);
  metrics_.set("lattice_prefix_cache_blocks", 0);
}

void PrefixCacheMetrics::update(const ReplicaCoordinator& coordinator) {
  auto advance = [&](const char* name, int64_t now, int64_t& seen) {
    if (now > seen) metrics_.add(name, {}, static_cast<double>(now - seen));
    seen = now;
  };
  const SchedulerStats stats = coordinator.stats();
  int64_t evictions = 0, cached = 0;
  for (int r = 0; r < coordinator.size(); ++r) {
    evictions += coordinator.scheduler(r).blocks().evictions();
    cached += coordinator.scheduler(r).blocks().num_cached();
  }
  advance("lattice_prefix_cache_queries_total", stats.prefix_cache_queries, queries_);
  advance("lattice_prefix_cache_hits_total", stats.prefix_cache_hits, hits_);
  advance("lattice_prefix_cache_evictions_total", evictions, evictions_);
  if (queries_ > 0) metrics_.set("lattice_prefix_cache_hit_rate", static_cast<double>(hits_) / static_cast<double>(queries_));
  metrics_.set("lattice_prefix_cache_blocks", static_cast<double>(cached));
}

}  // namespace lattice::serve
