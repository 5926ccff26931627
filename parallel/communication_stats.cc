#include "parallel/communication_stats.h"

#include <cstring>
#include <string>

#include "engine/core/error.h"

namespace lattice::parallel {

namespace {

// The wire form: the four figures in this build's native layout (every rank of a job runs the same binary).
struct Wire {
  double tp, pp, control;
  int64_t graph_steps;
};

double seconds_of(const Communicator* c) { return c ? c->seconds() : 0; }

}  // namespace

RankCommunication communication_counters(const ParallelContext& ctx) {
  RankCommunication r;
  r.rank = ctx.topo.rank;
  r.tp_seconds = seconds_of(ctx.tp.get());
  r.pp_seconds = seconds_of(ctx.prev.get()) + seconds_of(ctx.next.get());
  r.control_seconds = ctx.control ? ctx.control->seconds() : 0;
  return r;
}

RankCommunication operator-(const RankCommunication& after, const RankCommunication& before) {
  LATTICE_CHECK(after.rank == before.rank, "communication of rank ", after.rank, " minus rank ", before.rank);
  return {after.rank, after.tp_seconds - before.tp_seconds, after.pp_seconds - before.pp_seconds,
          after.control_seconds - before.control_seconds, after.graph_steps - before.graph_steps};
}

std::vector<RankCommunication> gather_communication(ParallelContext& ctx, const RankCommunication& mine) {
  if (!ctx.control) return {mine};
  const int world = ctx.topo.world_size;
  if (!ctx.topo.is_coordinator()) {
    const Wire w{mine.tp_seconds, mine.pp_seconds, mine.control_seconds, mine.graph_steps};
    ctx.control->send(std::string(reinterpret_cast<const char*>(&w), sizeof w), 0, kStatsTag);
    return {};
  }
  std::vector<RankCommunication> all{mine};
  for (int rank = 1; rank < world; ++rank) {
    const std::string bytes = ctx.control->recv(rank, kStatsTag);
    LATTICE_CHECK(bytes.size() == sizeof(Wire), "communication figures from rank ", rank, " have ", bytes.size(),
                  " bytes, expected ", sizeof(Wire));
    Wire w{};
    std::memcpy(&w, bytes.data(), sizeof w);
    all.push_back({rank, w.tp, w.pp, w.control, w.graph_steps});
  }
  return all;
}

}  // namespace lattice::parallel
