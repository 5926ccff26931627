// MPI_CHECK: routes MPI errors to lattice's error helper with the call, file:line and MPI's message.
#pragma once

#include <mpi.h>

#include <string>

#include "engine/core/error.h"

namespace lattice::parallel {

inline std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, static_cast<size_t>(len));
}

}  // namespace lattice::parallel

#define MPI_CHECK(call)                                                                               \
  do {                                                                                                \
    const int mpi_status_ = (call);                                                                   \
    if (mpi_status_ != MPI_SUCCESS)                                                                   \
      LATTICE_THROW(#call, " failed: ", ::lattice::parallel::mpi_error_string(mpi_status_));          \
  } while (0)
