// MPI implementations of Communicator and ControlChannel (internal to parallel/).
#pragma once

#include <mpi.h>

#include <memory>

#include "parallel/communicator.h"
#include "parallel/control_channel.h"

namespace lattice::parallel {

// Tensors on the CPU go straight to MPI; GPU tensors would be staged through host memory.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);  // takes ownership of comm
std::unique_ptr<ControlChannel> make_mpi_control_channel(MPI_Comm world, MPI_Comm tp_group);

}  // namespace lattice::parallel
