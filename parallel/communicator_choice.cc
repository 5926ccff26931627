#include "parallel/communicator_choice.h"

#include "engine/core/error.h"

namespace lattice::parallel {

const char* backend_name(CommBackend backend) {
  switch (backend) {
    case CommBackend::single: return "single";
    case CommBackend::mpi: return "mpi";
    case CommBackend::mpi_host_staging: return "mpi with host staging";
    case CommBackend::nccl: return "nccl";
  }
  return "unknown";
}

std::string CommunicatorChoice::describe() const {
  return reason.empty() ? backend_name(backend) : std::string(backend_name(backend)) + " (" + reason + ")";
}

CommunicatorChoice choose_device_communicator(int local_rank, int local_size, int device_count, bool nccl_available) {
  LATTICE_CHECK(local_size >= 1 && local_rank >= 0 && local_rank < local_size, "local rank ", local_rank,
                " outside a node of ", local_size, " ranks");
  LATTICE_CHECK(device_count >= 1, "no CUDA device is visible to local rank ", local_rank,
                " (check CUDA_VISIBLE_DEVICES), so it cannot compute on a GPU");
  CommunicatorChoice c;
  if (local_size > device_count) {
    c.backend = CommBackend::mpi_host_staging;
    c.device_id = local_rank % device_count;
    c.reason = std::to_string(local_size) + " ranks share " + std::to_string(device_count) +
               (device_count == 1 ? " GPU" : " GPUs") + "; NCCL needs one GPU per rank";
    return c;
  }
  c.device_id = local_rank;
  c.backend = nccl_available ? CommBackend::nccl : CommBackend::mpi_host_staging;
  c.reason = nccl_available ? "one GPU per rank" : "one GPU per rank, but this build has no NCCL";
  return c;
}

CommunicatorChoice choose_host_communicator(int world_size) {
  CommunicatorChoice c;
  c.backend = world_size > 1 ? CommBackend::mpi : CommBackend::single;
  c.reason = "CPU tensors";
  return c;
}

bool nccl_built() {
#ifdef LATTICE_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

}  // namespace lattice::parallel
