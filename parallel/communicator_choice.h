// Which communicator carries a rank's tensors, and why: a pure rule, so that it is tested without MPI or a GPU.
// Control messages (step plans, results) always go over MPI, whatever is chosen here.
//
//   no device                                  -> mpi (CPU tensors)
//   every rank of the node has its own GPU     -> nccl, device = local rank
//     (local_size <= visible devices) but no NCCL in this build -> mpi with host staging, device = local rank
//   more ranks on the node than GPUs           -> mpi with host staging, device = local rank % devices
//                                                 (NCCL refuses two ranks on one GPU)
#pragma once

#include <string>

namespace lattice::parallel {

enum class CommBackend { single, mpi, mpi_host_staging, nccl };

const char* backend_name(CommBackend backend);  // "single", "mpi", "mpi with host staging", "nccl"

struct CommunicatorChoice {
  CommBackend backend = CommBackend::single;
  int device_id = -1;  // the GPU this rank computes on (cuda:device_id); -1 without a device
  std::string reason;  // "one GPU per rank", "4 ranks share 1 GPU; NCCL needs one GPU per rank"

  // For the start-up line: "nccl (one GPU per rank)".
  std::string describe() const;
};

// The choice for a rank with a GPU: `local_rank` of `local_size` ranks on its node, `device_count` GPUs visible
// to it (>= 1, else an error), `nccl_available` when this build has NCCL.
CommunicatorChoice choose_device_communicator(int local_rank, int local_size, int device_count, bool nccl_available);

// The choice for CPU ranks: MPI, or single in a one-rank world.
CommunicatorChoice choose_host_communicator(int world_size);

// Whether this build has the NCCL communicator (LATTICE_HAVE_NCCL).
bool nccl_built();

}  // namespace lattice::parallel
