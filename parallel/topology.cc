#include "parallel/topology.h"

#include "engine/core/error.h"

namespace lattice::parallel {

Topology Topology::make(int world_size, int rank, int tp, int pp, int dp, int local_rank, int local_size) {
  LATTICE_CHECK(tp >= 1 && pp >= 1 && dp >= 1, "--tp, --pp and --dp must be >= 1, got tp ", tp, ", pp ", pp, ", dp ", dp);
  const std::string grid = "tp " + std::to_string(tp) + " x pp " + std::to_string(pp) +
                           (dp > 1 ? " x dp " + std::to_string(dp) : "");
  LATTICE_CHECK(world_size == tp * pp * dp, "the job has ", world_size, " ranks but ", grid, " = ", tp * pp * dp,
                "; launch with mpirun -np ", tp * pp * dp, " or pass --tp/--pp", dp > 1 ? "/--dp" : "",
                " whose product is ", world_size);
  LATTICE_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " outside a world of ", world_size);
  Topology t;
  t.world_size = world_size;
  t.rank = rank;
  t.tp = tp;
  t.pp = pp;
  t.dp = dp;
  t.tp_rank = rank % tp;
  t.pp_rank = rank / tp % pp;
  t.dp_rank = rank / (tp * pp);
  t.local_rank = local_rank;
  t.local_size = local_size;
  t.device_id = local_rank;
  return t;
}

std::string Topology::describe() const {
  return "rank " + std::to_string(rank) + " (" +
         (dp > 1 ? "dp " + std::to_string(dp_rank) + "/" + std::to_string(dp) + ", " : "") + "tp " +
         std::to_string(tp_rank) + "/" + std::to_string(tp) + ", pp " + std::to_string(pp_rank) + "/" +
         std::to_string(pp) + ", local " + std::to_string(local_rank) + "/" + std::to_string(local_size) + ")";
}

}  // namespace lattice::parallel
