// A read-only streaming kernel for measuring the device's memory read ceiling (the HBM bandwidth decode is
// judged against): every thread sums 16-byte vectors of a buffer, one result per block.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace lattice::kernels::cuda {

// Reads `bytes` (a multiple of 16) of `data` once; `partial` receives one float per block (at most
// read_all_blocks() floats) so the compiler cannot drop the loads.
void read_all(const void* data, size_t bytes, float* partial, cudaStream_t stream);
int read_all_blocks();

}  // namespace lattice::kernels::cuda
