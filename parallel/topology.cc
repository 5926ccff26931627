#include "parallel/topology.h"

#include "engine/core/error.h"

namespace lattice::parallel {

Topology Topology::make(int world_size, int rank, int tp, int pp, int local_rank, int local_size) {
  LATTICE_CHECK(tp >= 1 && pp >= 1, "--tp and --pp must be >= 1, got tp ", tp, ", pp ", pp);
  LATTICE_CHECK(world_size == tp * pp, "the job has ", world_size, " ranks but tp ", tp, " x pp ", pp, " = ", tp * pp,
                "; launch with mpirun -np ", tp * pp, " or pass --tp/--pp whose product is ", world_size);
  LATTICE_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " outside a world of ", world_size);
  Topology t;
  t.world_size = world_size;
  t.rank = rank;
  t.tp = tp;
  t.pp = pp;
  t.tp_rank = rank % tp;
  t.pp_rank = rank / tp;
  t.local_rank = local_rank;
  t.local_size = local_size;
  t.device_id = local_rank;
  return t;
}

std::string Topology::describe() const {
  return "rank " + std::to_string(rank) + " (tp " + std::to_string(tp_rank) + "/" + std::to_string(tp) + ", pp " +
         std::to_string(pp_rank) + "/" + std::to_string(pp) + ", local " + std::to_string(local_rank) + "/" +
         std::to_string(local_size) + ")";
}

}  // namespace lattice::parallel
