// RMSNorm, alone, fused with the residual add or per head, and the element-wise add (f32, CPU).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight. out may alias x.
void rms_norm_f32(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps);

// residual[r, :] += x[r, :], then out[r, :] = rms_norm(residual[r, :]) * weight. out may alias x (not residual).
void add_rms_norm_f32(const float* x, float* residual, const float* weight, float* out, int64_t rows, int64_t dim,
                      float eps);

// Per-head RMSNorm in place (Qwen3's q_norm / k_norm): for t < tokens, h < heads, the head_dim values at
// x + t * row_stride + h * head_dim become rms_norm(them) * weight [head_dim]. Rows are row_stride apart, so x
// can point at one projection's heads inside the fused qkv output.
void head_rms_norm_f32(float* x, int64_t row_stride, const float* weight, int64_t tokens, int64_t heads,
                       int64_t head_dim, float eps);

// x[i] += y[i]
void add_inplace_f32(float* x, const float* y, int64_t n);

}  // namespace lattice::kernels::cpu
