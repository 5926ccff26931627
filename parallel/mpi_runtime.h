// MPI start-up and the communicators of one rank. This and the .cc files under parallel/ are the only
// places that include mpi.h; everything else sees Communicator and ControlChannel.
#pragma once

#include <memory>

#include "parallel/communicator.h"
#include "parallel/communicator_choice.h"
#include "parallel/control_channel.h"
#include "parallel/topology.h"

namespace lattice::parallel {

class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);  // MPI_Init_thread (funneled)
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int world_size() const { return world_size_; }
  int world_rank() const { return world_rank_; }
  int local_rank() const { return local_rank_; }  // SLURM_LOCALID when set, else from the shared-memory split
  int local_size() const { return local_size_; }

  // True when this process was started by mpirun/mpiexec/srun (so MPI must be initialised).
  static bool launched_by_mpi();
  // Ends every rank of the job with `code` (MPI_Abort); only the launcher's top level calls it.
  [[noreturn]] static void abort_job(int code);

 private:
  int world_size_ = 1, world_rank_ = 0, local_rank_ = 0, local_size_ = 1;
};

// Everything a rank needs to talk to the others.
struct ParallelContext {
  Topology topo;
  CommunicatorChoice comm;             // what carries tp/prev/next and why (the start-up line prints describe())
  std::unique_ptr<Communicator> tp;    // this rank's TP group (within its replica)
  std::unique_ptr<Communicator> prev;  // link to stage pp_rank - 1 (this rank is 1 in it), or null
  std::unique_ptr<Communicator> next;  // link to stage pp_rank + 1 (this rank is 0 in it), or null
  std::unique_ptr<ControlChannel> control;  // null in a single process

  // Once per step: waits for everything the TP group and the PP links enqueued (see
  // Communicator::synchronize); a failed or stalled peer becomes a lattice::Error.
  void synchronize();
};

// This rank's communicator choice for computing on a GPU (choose_device_communicator with the node's rank
// count from MPI and the GPUs the CUDA runtime shows). The launcher creates its DeviceContext on
// choice.device_id, then passes it to make_parallel_context. An error in a build without CUDA.
CommunicatorChoice choose_device_communicator(const MpiRuntime& mpi);

// Builds the TP groups and the PP links of every replica (collective over the world; dp replicas of tp x pp
// ranks, laid out as Topology says). `device` null: CPU tensors over MPI.
// With a device (which must be choose_device_communicator(mpi).device_id): NCCL on device->stream where every
// rank of every node has its own GPU, else MPI with host staging on device->stream. Control stays on MPI.
ParallelContext make_parallel_context(const MpiRuntime& mpi, int tp, int pp, int dp, const DeviceBinding* device);
// One process, no MPI: single-rank communicators.
ParallelContext make_single_process_context();

}  // namespace lattice::parallel
