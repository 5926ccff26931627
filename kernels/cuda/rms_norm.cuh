// RMSNorm, optionally fused with the residual add (CUDA), mirroring kernels/cpu/norm.h.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// x, residual, out: [rows, dim]; weight: [dim]; all T, statistics in f32.
// residual == nullptr: out = x / sqrt(mean(x^2) + eps) * weight (the final norm).
// residual != nullptr: residual += x (stored rounded to T), then out = rms_norm(residual) * weight, the norm
//   taken of the stored (rounded) residual so it equals what the next layer adds to.
// out may alias x. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void rms_norm(const T* x, T* residual, const T* weight, T* out, int64_t rows, int64_t dim, float eps,
              cudaStream_t stream);

}  // namespace lattice::kernels::cuda
