// Sampling penalties on the GPU (CUDA), the rules of kernels/cpu/penalties.h (the reference, which the engine's
// CPU sampler runs): HF repetition penalty over every token of the context (prompt and generated), then OpenAI
// presence/frequency penalties over the generated tokens. The raw logits stay untouched (log-probabilities are
// the model's; see token_logprobs).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace lattice::kernels::cuda {

// Per row, in device memory. Row r's context is tokens[context_begin, context_begin + context_len) of the
// flat token array; its first prompt_len tokens are the prompt.
struct PenaltyRow {
  float repetition;  // 1: off. A seen token's logit x becomes x / repetition when x > 0, else x * repetition
  float presence;    // subtracted once from each generated token's logit
  float frequency;   // subtracted once per occurrence among the generated tokens
  int32_t context_begin;
  int32_t context_len;
  int32_t prompt_len;
};

// Device bytes of scratch apply_penalties needs (two bitmaps of the vocabulary per row).
size_t penalties_workspace_bytes(int64_t rows, int64_t vocab);

// out[r, :] (f32) = logits[r, :] with row r's penalties; out must not alias logits. Token ids outside
// [0, vocab) are ignored. workspace: penalties_workspace_bytes(rows, vocab) bytes of device memory.
// Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void apply_penalties(const T* logits, float* out, int64_t rows, int64_t vocab, const PenaltyRow* params,
                     const int32_t* tokens, void* workspace, size_t workspace_bytes, cudaStream_t stream);

// logprobs[r] = log_softmax(logits[r, :])[chosen[r]] in f32, NaN logits ignored (the model's log-probability of
// a token picked from adjusted logits). Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void token_logprobs(const T* logits, int64_t rows, int64_t vocab, const int32_t* chosen, float* logprobs,
                    cudaStream_t stream);

}  // namespace lattice::kernels::cuda
