// Element-wise in-place add (CUDA), mirroring kernels/cpu/norm.h add_inplace_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// x[i] += y[i] for i < n, the sum taken in f32 and rounded once to T. Instantiated for T in
// {float, __half, __nv_bfloat16}.
template <typename T>
void add_inplace(T* x, const T* y, int64_t n, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
