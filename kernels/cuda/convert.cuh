// Element conversion between f32, f16 and bf16 (CUDA), mirroring kernels/cpu/convert.h: round to nearest even.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// out[i] = in[i] converted through f32 (exact for f16/bf16 -> f32; one rounding to TOut otherwise).
// Instantiated for every ordered pair of distinct types in {float, __half, __nv_bfloat16}.
template <typename TIn, typename TOut>
void convert(const TIn* in, TOut* out, int64_t n, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
