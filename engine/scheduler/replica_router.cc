#include "engine/scheduler/replica_router.h"

#include <tuple>

#include "engine/core/error.h"

namespace lattice {

int choose_replica(const std::vector<ReplicaLoad>& loads, int64_t prefix_slack) {
  LATTICE_CHECK(!loads.empty(), "no replica to route a request to");
  auto lighter = [&](size_t a, size_t b) {  // strictly less loaded; equal loads keep the lower index
    const ReplicaLoad &x = loads[a], &y = loads[b];
    return std::make_tuple(x.waiting, -x.free_blocks, x.running) <
           std::make_tuple(y.waiting, -y.free_blocks, y.running);
  };
  size_t least = 0, cached = 0;
  for (size_t r = 1; r < loads.size(); ++r) {
    if (lighter(r, least)) least = r;
    if (loads[r].cached_tokens > loads[cached].cached_tokens ||
        (loads[r].cached_tokens == loads[cached].cached_tokens && lighter(r, cached)))
      cached = r;
  }
  const bool worth_it = loads[cached].cached_tokens > loads[least].cached_tokens &&
                        loads[cached].waiting <= loads[least].waiting + prefix_slack;
  return static_cast<int>(worth_it ? cached : least);
}

}  // namespace lattice
