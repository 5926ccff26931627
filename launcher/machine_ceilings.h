// What this machine can do at best, measured in the same run as a benchmark so that results are reported
// as a fraction of a real ceiling: memory read bandwidth and BLAS sgemm throughput.
#pragma once

namespace lattice::launcher {

// GB/s reading a 512 MiB f32 array with all OpenMP threads (best of several passes).
double measure_read_bandwidth_gbs();

// GFLOP/s of f32 GEMM through the engine's BLAS for an m x n x k product (best of several runs).
double measure_sgemm_gflops(int m, int n, int k);

}  // namespace lattice::launcher
