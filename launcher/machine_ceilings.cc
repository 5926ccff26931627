#include "launcher/machine_ceilings.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/core/tensor.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/read_bandwidth.h"

#ifdef LATTICE_HAVE_CUDA
#include "engine/cuda/device_context.h"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/read_bandwidth.cuh"
#endif

namespace lattice::launcher {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double measure_read_bandwidth_gbs() {
  const int64_t n = int64_t{128} << 20;  // 512 MiB of f32: far beyond any cache
  Tensor buf = Tensor::empty({n}, DType::f32);
  float* x = buf.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i & 1023);
  // kernels/cpu's sum: vectors as wide as the GEMVs' and independent accumulators (one running sum measured
  // 4.8 GB/s where the decode GEMVs read 9.6 in one run on the 2-core VM).
  double best = 0;
  volatile float sink = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    const float total = kernels::cpu::sum_f32(x, n);
    const double s = seconds_since(start);
    sink = sink + total;
    best = std::max(best, static_cast<double>(n) * sizeof(float) / s / 1e9);
  }
  return best;
}

double measure_device_read_bandwidth_gbs(DeviceContext& device) {
#ifdef LATTICE_HAVE_CUDA
  const int64_t bytes = int64_t{2} << 30;  // far beyond the L2 (50-60 MB on Hopper)
  Tensor buf = Tensor::zeros({bytes}, DType::u8, device.device());
  Tensor partial = Tensor::empty({kernels::cuda::read_all_blocks()}, DType::f32, device.device());
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    device.synchronize();
    const auto start = std::chrono::steady_clock::now();
    kernels::cuda::read_all(buf.raw(), static_cast<size_t>(bytes), static_cast<float*>(partial.raw()), device.stream());
    device.synchronize();
    if (pass > 0) best = std::max(best, static_cast<double>(bytes) / seconds_since(start) / 1e9);  // pass 0 warms up
  }
  return best;
#else
  (void)device;
  LATTICE_THROW("measuring device bandwidth needs the CUDA backend");
#endif
}

double measure_device_gemm_tflops(DeviceContext& device, int n) {
#ifdef LATTICE_HAVE_CUDA
  const int64_t count = int64_t{n} * n;
  Tensor a = Tensor::zeros({count}, DType::bf16, device.device()), b = Tensor::zeros({count}, DType::bf16, device.device());
  Tensor c = Tensor::empty({count}, DType::bf16, device.device());
  kernels::cuda::GemmLt& gemm = *device.exec().gemm;
  double best = 0;
  for (int run = 0; run < 6; ++run) {
    device.synchronize();
    const auto start = std::chrono::steady_clock::now();
    gemm.gemm_nt(static_cast<const __nv_bfloat16*>(a.raw()), static_cast<const __nv_bfloat16*>(b.raw()),
                 static_cast<__nv_bfloat16*>(c.raw()), n, n, n, device.stream());
    device.synchronize();
    if (run > 0) best = std::max(best, 2.0 * n * n * n / seconds_since(start) / 1e12);  // run 0 plans and warms up
  }
  return best;
#else
  (void)device;
  (void)n;
  LATTICE_THROW("measuring device GEMM throughput needs the CUDA backend");
#endif
}

double measure_sgemm_gflops(int m, int n, int k) {
  std::vector<float> a(static_cast<size_t>(m) * k, 0.5f), b(static_cast<size_t>(n) * k, 0.25f),
      c(static_cast<size_t>(m) * n);
  kernels::cpu::gemm_nt_f32(a.data(), b.data(), c.data(), m, n, k);  // warm-up
  double best = 0;
  for (int run = 0; run < 20; ++run) {  // ~10 ms each at 1024^3: best of 20 rides out a busy neighbour
    const auto start = std::chrono::steady_clock::now();
    kernels::cpu::gemm_nt_f32(a.data(), b.data(), c.data(), m, n, k);
    best = std::max(best, 2.0 * m * n * k / seconds_since(start) / 1e9);
  }
  return best;
}

}  // namespace lattice::launcher
