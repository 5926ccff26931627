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

// TFLOP/s of a bf16 n x n x n product through the engine's GemmLt (cuBLASLt, f32 accumulation) on the device, best
// of several runs after a warm-up: the ceiling prefill is measured against. Needs the CUDA backend; takes 3 n^2
// bf16 elements of device memory for the measurement.
double measure_device_gemm_tflops(DeviceContext& device, int n);

// GFLOP/s of f32 GEMM through the engine's BLAS for an m x n x k product (best of several runs).
double measure_sgemm_gflops(int m, int n, int k);

}  // namespace lattice::launcher
