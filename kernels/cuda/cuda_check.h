// CUDA_CHECK and CUBLAS_CHECK: route runtime and cuBLASLt failures to lattice::throw_error with the call,
// file:line and the library's message. Library code never exits; the launcher's top level ends the job.
// (NCCL_CHECK lives in parallel/, the only module that includes nccl.h.)
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "engine/core/error.h"

#define CUDA_CHECK(call)                                                                                  \
  do {                                                                                                    \
    const cudaError_t cuda_status_ = (call);                                                              \
    if (cuda_status_ != cudaSuccess)                                                                      \
      LATTICE_THROW(#call, " failed: ", cudaGetErrorName(cuda_status_), ": ", cudaGetErrorString(cuda_status_)); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                                \
  do {                                                                                                    \
    const cublasStatus_t cublas_status_ = (call);                                                         \
    if (cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                          \
      LATTICE_THROW(#call, " failed: ", cublasLtGetStatusName(cublas_status_), ": ",                      \
                    cublasLtGetStatusString(cublas_status_));                                             \
  } while (0)

// After a kernel launch: reports a bad configuration (too many threads, too much shared memory) at once.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
