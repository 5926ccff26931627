#include "kernels/cpu/activation.h"

#include <cstring>

#include "kernels/cpu/vec_math.h"

namespace lattice::kernels::cpu {

void silu_mul_f32(const float* gate, const float* up, float* out, int64_t rows, int64_t inter, int64_t in_stride) {
#pragma omp parallel for schedule(static) if (rows * inter > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate + r * in_stride;
    const float* u = up + r * in_stride;
    float* o = out + r * inter;
#pragma omp simd
    for (int64_t i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + exp_f32(-g[i])) * u[i];
  }
}

void embedding_f32(const float* table, int64_t first_id, int64_t rows, const int32_t* ids, float* out, int64_t tokens,
                   int64_t dim) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t row = static_cast<int64_t>(ids[t]) - first_id;
    if (row >= 0 && row < rows)
      std::memcpy(out + t * dim, table + row * dim, sizeof(float) * dim);
    else
      std::memset(out + t * dim, 0, sizeof(float) * dim);
  }
}

}  // namespace lattice::kernels::cpu
