#include "kernels/cpu/read_bandwidth.h"

namespace lattice::kernels::cpu {

float sum_f32(const float* x, int64_t n) {
  constexpr int64_t kLanes = 16, kChains = 16, kStride = kLanes * kChains;
  const int64_t blocks = n / kStride;
  float total = 0;
#pragma omp parallel reduction(+ : total)
  {
    float acc[kChains][kLanes] = {};
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t c = 0; c < kChains; ++c)
#pragma omp simd
        for (int64_t l = 0; l < kLanes; ++l) acc[c][l] += x[b * kStride + c * kLanes + l];
    for (const auto& chain : acc)
      for (const float v : chain) total += v;
  }
  for (int64_t i = blocks * kStride; i < n; ++i) total += x[i];
  return total;
}

}  // namespace lattice::kernels::cpu
