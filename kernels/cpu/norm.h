// RMSNorm, alone or fused with the residual add, and the element-wise add (f32, CPU).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight. out may alias x.
void rms_norm_f32(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps);

// residual[r, :] += x[r, :], then out[r, :] = rms_norm(residual[r, :]) * weight. out may alias x (not residual).
void add_rms_norm_f32(const float* x, float* residual, const float* weight, float* out, int64_t rows, int64_t dim,
                      float eps);

// x[i] += y[i]
void add_inplace_f32(float* x, const float* y, int64_t n);

}  // namespace lattice::kernels::cpu
