// The sampling penalties (f32, CPU), the reference rules that engine/sampler and kernels/cuda/penalties.cu
// both follow: the Hugging Face repetition penalty over every distinct token of the context (prompt and
// generated), then the OpenAI presence and frequency penalties over the generated tokens only.
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// x: f32 [vocab] logits, penalised in place. context: context_len token ids, the first prompt_len of them the
// prompt; ids outside [0, vocab) are ignored. Each distinct context token t gets, once,
//   x[t] = x[t] > 0 ? x[t] / repetition : x[t] * repetition          (repetition = 1: off)
// then each distinct generated token t, seen n times among the generated tokens, gets
//   x[t] -= presence + frequency * n                                   (in f32, without fused multiply-add).
void apply_penalties_f32(float* x, int64_t vocab, const int32_t* context, int64_t context_len, int64_t prompt_len,
                         float repetition, float presence, float frequency);

}  // namespace lattice::kernels::cpu
