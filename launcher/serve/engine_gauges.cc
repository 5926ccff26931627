#include "launcher/serve/engine_gauges.h"

#include <algorithm>
#include <string>

namespace lattice::serve {

namespace {

double percent_used(int64_t blocks, int64_t free_blocks) {
  return 100.0 * static_cast<double>(blocks - free_blocks) / static_cast<double>(blocks);
}

}  // namespace

void EngineGauges::update(const ReplicaCoordinator& replicas, int64_t ending) {
  int64_t running = 0, waiting = 0, free_blocks = 0, blocks = 0;
  routed_seen_.resize(static_cast<size_t>(replicas.size()), 0);
  for (int r = 0; r < replicas.size(); ++r) {
    const Scheduler& s = replicas.scheduler(r);
    const BlockManager& b = s.blocks();
    const Labels replica = {{"replica", std::to_string(r)}};
    metrics_.set("lattice_replica_running_sequences", replica, static_cast<double>(s.num_running()));
    metrics_.set("lattice_replica_waiting_sequences", replica, static_cast<double>(s.num_waiting()));
    metrics_.set("lattice_replica_kv_cache_usage_percent", replica, percent_used(b.num_blocks(), b.num_free()));
    int64_t& seen = routed_seen_[static_cast<size_t>(r)];
    metrics_.add("lattice_replica_requests_total", replica, static_cast<double>(replicas.routed(r) - seen));
    seen = replicas.routed(r);
    running += s.num_running();
    waiting += s.num_waiting();
    free_blocks += b.num_free();
    blocks += b.num_blocks();
  }
  const int64_t pending = bridge_.pending() - ending;
  metrics_.set("lattice_running_sequences", static_cast<double>(running));
  metrics_.set("lattice_waiting_sequences", static_cast<double>(waiting));
  metrics_.set("lattice_queue_length", static_cast<double>(std::max<int64_t>(0, pending - running)));
  metrics_.set("lattice_kv_cache_free_blocks", static_cast<double>(free_blocks));
  metrics_.set("lattice_kv_cache_usage_percent", percent_used(blocks, free_blocks));
  const int64_t preemptions = replicas.stats().preemptions;
  if (preemptions > preemptions_seen_)
    metrics_.add("lattice_preemptions_total", {}, static_cast<double>(preemptions - preemptions_seen_));
  preemptions_seen_ = preemptions;
  prefix_.update(replicas);
}

}  // namespace lattice::serve
