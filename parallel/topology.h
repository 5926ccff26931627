// Where this rank sits in the tp x pp grid. A plain value, passed explicitly (no global rank variables).
// TP groups are consecutive world ranks (a TP group stays inside a node); stage k holds ranks
// [k * tp, (k + 1) * tp).
#pragma once

#include <string>

namespace lattice::parallel {

struct Topology {
  int world_size = 1;
  int rank = 0;
  int tp = 1;
  int pp = 1;
  int tp_rank = 0;
  int pp_rank = 0;
  int local_rank = 0;  // among the ranks on this node
  int local_size = 1;
  int device_id = 0;   // the GPU this rank uses on its node: local_rank here; make_parallel_context sets the
                     // communicator choice's (local_rank % GPUs when ranks share them); unused on CPU

  // Validates world_size == tp * pp (naming what to pass otherwise) and derives tp_rank / pp_rank.
  static Topology make(int world_size, int rank, int tp, int pp, int local_rank = 0, int local_size = 1);

  bool is_first_stage() const { return pp_rank == 0; }
  bool is_last_stage() const { return pp_rank == pp - 1; }
  bool is_coordinator() const { return rank == 0; }
  int world_rank(int stage, int tp_index) const { return stage * tp + tp_index; }
  // The coordinator's results come back from this rank: TP rank 0 of the last stage.
  int sampler_rank() const { return world_rank(pp - 1, 0); }
  std::string describe() const;  // "rank 3 (tp 1/2, pp 1/2, local 3/4)"
};

}  // namespace lattice::parallel
