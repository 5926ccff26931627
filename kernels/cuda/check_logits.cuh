// Whether each row of logits can be sampled, on the GPU (CUDA): the rule of kernels::cpu::check_logits (NaN, then
// +inf, then a row of nothing but -inf), one block per row, so that a bad row ends its request alone.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/sampling.h"

namespace lattice::kernels::cuda {

// logits: f32 [rows, vocab]. status[r] = static_cast<int32_t>(cpu::check_logits(row r)).
void check_logits(const float* logits, int64_t rows, int64_t vocab, int32_t* status, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
