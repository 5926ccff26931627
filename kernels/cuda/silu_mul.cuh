// SiLU-gated MLP activation (CUDA), mirroring kernels/cpu/activation.h silu_mul_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// out[r, i] = silu(gate[r * in_stride + i]) * up[r * in_stride + i]; out: [rows, inter], math in f32.
// Separate gate/up buffers: in_stride = inter (then out may alias gate). A fused [rows, 2 * inter] gate/up
// projection (one GEMM for both): gate = gate_up, up = gate_up + inter, in_stride = 2 * inter.
// Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void silu_mul(const T* gate, const T* up, T* out, int64_t rows, int64_t inter, int64_t in_stride,
              cudaStream_t stream);

}  // namespace lattice::kernels::cuda
