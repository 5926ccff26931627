#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace lattice::kernels::cpu {

void rope_f32(float* x, const int32_t* positions, const float* inv_freq, int64_t tokens, int64_t heads,
              int64_t head_dim) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static) if (tokens > 1)
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<float> cos_t(half), sin_t(half);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[t]) * inv_freq[i];
      cos_t[i] = static_cast<float>(std::cos(angle));
      sin_t[i] = static_cast<float>(std::sin(angle));
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos_t[i] - b * sin_t[i];
        v[i + half] = b * cos_t[i] + a * sin_t[i];
      }
    }
  }
}

}  // namespace lattice::kernels::cpu
