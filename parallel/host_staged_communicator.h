// GPU tensors over a host communicator (MPI): each operation copies its device operands into pinned host
// memory on the compute stream, waits for the stream (the operands were produced there), runs the host
// operation, and enqueues the copy of the result back on the stream. Host tensors pass straight through.
//
// For ranks that share a GPU, which NCCL refuses, so that TP and PP run (slowly) on a one-GPU machine. Built
// only with the CUDA backend (LATTICE_HAVE_CUDA); internal to parallel/.
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace lattice::parallel {

// `host` carries the bytes (any Communicator that takes CPU tensors); tensors on the GPU must live on
// cuda:device.index and be ordered on device.stream.
std::unique_ptr<Communicator> make_host_staged_communicator(std::unique_ptr<Communicator> host,
                                                            const DeviceBinding& device);

}  // namespace lattice::parallel
