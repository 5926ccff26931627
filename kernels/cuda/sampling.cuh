// Token selection on the GPU (CUDA): greedy argmax with the chosen token's log-probability and the row's check.
// Log-probabilities are the model's, as in engine/sampler/sampler.h: log-softmax of the raw logits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/sampling.h"

namespace lattice::kernels::cuda {

// logits: [rows, vocab]. tokens[r] = argmax of row r (the lowest index among equal maxima, as std::max_element),
// logprobs[r] = logits[r, tokens[r]] - logsumexp(logits[r, :]) in f32 (logprobs may be null),
// status[r] = static_cast<int32_t>(cpu::check_logits(row r)) (status may be null), all in one pass over the row.
// NaN logits are never chosen unless the whole row is NaN (then token 0 and a NaN logprob).
// Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void greedy_sample(const T* logits, int64_t rows, int64_t vocab, int32_t* tokens, float* logprobs, int32_t* status,
                   cudaStream_t stream);

}  // namespace lattice::kernels::cuda
