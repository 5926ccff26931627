// Per-head RMSNorm in place (Qwen3's q_norm / k_norm before RoPE, CUDA), mirroring kernels/cpu/norm.h's
// head_rms_norm_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// For t < tokens, h < heads: the head_dim values at x + t * row_stride + h * head_dim become
// rms_norm(them) * weight [head_dim], statistics in f32, stored rounded to T. x may point at one projection's
// heads inside the fused qkv output (row_stride = its row width). Instantiated for T in {float, __half,
// __nv_bfloat16}.
template <typename T>
void head_rms_norm(T* x, int64_t row_stride, const T* weight, int64_t tokens, int64_t heads, int64_t head_dim,
                   float eps, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
