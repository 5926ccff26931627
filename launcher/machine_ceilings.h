// What this machine can do at best, measured in the same run as a benchmark so that results are reported
// as a fraction of a real ceiling: memory read bandwidth and BLAS sgemm throughput.
#pragma once

namespace lattice {
class DeviceContext;
}

namespace lattice::launcher {

// GB/s reading a 512 MiB f32 array with all OpenMP threads (best of several passes).
double measure_read_bandwidth_gbs();

// GB/s a GPU kernel reads from a 2 GiB device buffer with 16-byte loads (best of several passes): the HBM
// read ceiling decode is measured against. Needs the CUDA backend.
double measure_device_read_bandwidth_gbs(DeviceContext& device);

// GFLOP/s of f32 GEMM through the engine's BLAS for an m x n x k product (best of several runs).
double measure_sgemm_gflops(int m, int n, int k);

}  // namespace lattice::launcher
