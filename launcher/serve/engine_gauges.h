// The engine's state on /metrics, brought up to date by the serve loop (on its thread) after every step and
// every event: the running batch, the waiting queue and KV use, in total (unlabelled) and per data-parallel
// replica (the lattice_replica_* families, labelled replica="r"), preemptions, the sequences routed to each
// replica, and the prefix cache (prefix_cache_metrics.h).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/scheduler/replica_coordinator.h"
#include "launcher/serve/engine_bridge.h"
#include "launcher/serve/metrics.h"
#include "launcher/serve/prefix_cache_metrics.h"

namespace lattice::serve {

class EngineGauges {
 public:
  EngineGauges(Metrics& metrics, const EngineBridge& bridge) : metrics_(metrics), bridge_(bridge), prefix_(metrics) {}
  // `ending`: sequences that the event being reported ends, still pending in the bridge until it is told.
  void update(const ReplicaCoordinator& replicas, int64_t ending);

 private:
  Metrics& metrics_;
  const EngineBridge& bridge_;
  PrefixCacheMetrics prefix_;
  int64_t preemptions_seen_ = 0;
  std::vector<int64_t> routed_seen_;  // per replica, what lattice_replica_requests_total counts so far
};

}  // namespace lattice::serve
