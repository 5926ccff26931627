// One rank's time in communication over a run (lattice bench), and its gathering on rank 0. Each figure is
// what the communicators report (Communicator::seconds: wall time inside MPI calls, device time of NCCL's
// operations from CUDA events), as the difference of two snapshots taken around the run.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/mpi_runtime.h"

namespace lattice::parallel {

struct RankCommunication {
  int rank = 0;                // world rank
  double tp_seconds = 0;       // the TP group's collectives (the all-reduces, the logits' gather)
  double pp_seconds = 0;       // send/recv of hidden states between pipeline stages
  double control_seconds = 0;  // plans and results over MPI (the plan's broadcast in the TP group among them);
                               // wall time, waiting for the peer that sends included
  int64_t graph_steps = 0;     // steps replayed from a CUDA graph on this rank, whose collectives are not timed

  double total_seconds() const { return tp_seconds + pp_seconds + control_seconds; }
};

// This rank's counters now (cumulative since start-up; graph_steps left 0 for the caller). `ctx` may be a
// single process' context (zeros).
RankCommunication communication_counters(const ParallelContext& ctx);
// The communication between two snapshots of the same rank.
RankCommunication operator-(const RankCommunication& after, const RankCommunication& before);

// Collective over every rank of the job: rank 0 returns every rank's `mine` in world-rank order, other ranks an
// empty vector. A single process (no control channel) returns {mine}.
std::vector<RankCommunication> gather_communication(ParallelContext& ctx, const RankCommunication& mine);

}  // namespace lattice::parallel
