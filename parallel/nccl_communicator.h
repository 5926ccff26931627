// NCCL implementation of Communicator for tensors on GPUs, one GPU per rank (internal to parallel/; built
// only with LATTICE_HAVE_NCCL). Used for the TP all-reduce and the PP send/recv when each rank has its own GPU.
//
// Every call only enqueues on `stream` (no host wait for the data, so the calls may be captured in a CUDA
// graph): it checks the enqueue result and, the communicator being non-blocking (ncclConfig_t::blocking = 0),
// waits for ncclInProgress to clear, which is host-side work only. synchronize() is the once-per-step
// watchdog: it polls cudaStreamQuery and ncclCommGetAsyncError, so a failed or stuck peer becomes a
// lattice::Error naming the rank after `timeout_seconds` (the communicator is aborted with ncclCommAbort
// first), never a hang. Set-up is bounded by the same timeout. seconds() is the operations' device time: a pair
// of CUDA events on the stream around each call (outside graph captures), read at synchronize().
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "parallel/communicator.h"

struct CUstream_st;  // cudaStream_t without including the CUDA headers

namespace lattice::parallel {

struct NcclOptions {
  int device = 0;                  // this rank's CUDA device; every tensor passed in must live on it
  CUstream_st* stream = nullptr;   // the stream the operations are ordered on (the engine's compute stream);
                                   // null: the legacy default stream
  double timeout_seconds = 300.0;  // longest wait for set-up or for synchronize() before aborting
  std::string label = "group";     // names the communicator in errors: "tp group of world rank 3"
};

// Collective over the ranks of `comm` (borrowed for the call only): rank 0 makes the ncclUniqueId and
// broadcasts it over MPI, then every rank joins the NCCL communicator with its rank in `comm`.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, const NcclOptions& options);

}  // namespace lattice::parallel
