#include "kernels/cpu/norm.h"

#include <cmath>

namespace lattice::kernels::cpu {

namespace {

void rms_norm_row(const float* x, const float* weight, float* out, int64_t dim, float eps) {
  double sum = 0;  // accumulate in double: dim can be 8k and the reference is float64
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = x[i] * inv * weight[i];
}

}  // namespace

void rms_norm_f32(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps) {
#pragma omp parallel for schedule(static) if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) rms_norm_row(x + r * dim, weight, out + r * dim, dim, eps);
}

void add_rms_norm_f32(const float* x, float* residual, const float* weight, float* out, int64_t rows, int64_t dim,
                      float eps) {
#pragma omp parallel for schedule(static) if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    float* res = residual + r * dim;
    const float* xr = x + r * dim;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) res[i] += xr[i];
    rms_norm_row(res, weight, out + r * dim, dim, eps);
  }
}

void head_rms_norm_f32(float* x, int64_t row_stride, const float* weight, int64_t tokens, int64_t heads,
                       int64_t head_dim, float eps) {
#pragma omp parallel for schedule(static) if (tokens > 1)
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      float* head = x + t * row_stride + h * head_dim;
      rms_norm_row(head, weight, head, head_dim, eps);
    }
}

void add_inplace_f32(float* x, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace lattice::kernels::cpu
