// A pass that reads memory as fast as the cores can (f32, CPU): the read-bandwidth ceiling `lattice bench` and
// `lattice plan calibrate` measure decode against. Compiled with the CPU kernels' flags (-march=native), so its
// vectors are as wide as the GEMVs'.
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// The sum of x[0, n) over the OpenMP threads, each with 16 independent 16-lane accumulators (one running sum
// would be bound by the add's latency, not by memory). Summation order differs from a sequential sum.
float sum_f32(const float* x, int64_t n);

}  // namespace lattice::kernels::cpu
