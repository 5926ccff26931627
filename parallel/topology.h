// Where this rank sits in the dp x pp x tp grid. A plain value, passed explicitly (no global rank variables).
// Ranks are laid out dp-major: replica r holds world ranks [r * tp * pp, (r + 1) * tp * pp), and within it
// TP groups are consecutive ranks (a TP group stays inside a node): stage k of replica r holds
// [r * tp * pp + k * tp, r * tp * pp + (k + 1) * tp). Every replica is a whole copy of the model.
#pragma once

#include <string>

namespace lattice::parallel {

struct Topology {
  int world_size = 1;
  int rank = 0;
  int tp = 1;
  int pp = 1;
  int dp = 1;       // data-parallel replicas
  int tp_rank = 0;
  int pp_rank = 0;
  int dp_rank = 0;  // this rank's replica
  int local_rank = 0;  // among the ranks on this node
  int local_size = 1;
  int device_id = 0;   // the GPU this rank uses on its node: local_rank here; make_parallel_context sets the
                     // communicator choice's (local_rank % GPUs when ranks share them); unused on CPU

  // Validates world_size == tp * pp * dp (naming what to pass otherwise) and derives the ranks in the grid.
  static Topology make(int world_size, int rank, int tp, int pp, int dp = 1, int local_rank = 0, int local_size = 1);

  bool is_first_stage() const { return pp_rank == 0; }
  bool is_last_stage() const { return pp_rank == pp - 1; }
  bool is_coordinator() const { return rank == 0; }
  // TP rank 0 of the first stage: it receives its replica's plans from the coordinator (rank 0 is replica 0's).
  bool is_replica_leader() const { return pp_rank == 0 && tp_rank == 0; }
  int replica_size() const { return tp * pp; }
  // The world rank of (stage, tp_index) in `replica`, and in this rank's own replica.
  int replica_rank(int replica, int stage, int tp_index) const { return (replica * pp + stage) * tp + tp_index; }
  int world_rank(int stage, int tp_index) const { return replica_rank(dp_rank, stage, tp_index); }
  int leader_rank(int replica) const { return replica_rank(replica, 0, 0); }
  // The coordinator's results come back from TP rank 0 of a replica's last stage.
  int sampler_rank(int replica) const { return replica_rank(replica, pp - 1, 0); }
  int sampler_rank() const { return sampler_rank(dp_rank); }
  std::string describe() const;  // "rank 3 (tp 1/2, pp 1/2, local 3/4)", with "dp 1/2, " first when dp > 1
};

}  // namespace lattice::parallel
