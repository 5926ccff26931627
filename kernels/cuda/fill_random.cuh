// Fills device memory with the counter-based hash values of kernels/cpu/fill_random.h (generated weights made
// on the GPU, bit-identical to the CPU's for the same HashFill).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/fill_random.h"

namespace lattice::kernels::cuda {

// dst[j] = hash_fill_value(fill, j) for j < count, rounded to nearest even for half types.
// Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void fill_hash(T* dst, int64_t count, const HashFill& fill, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
