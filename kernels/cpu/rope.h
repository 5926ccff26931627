// Rotary position embedding in the Hugging Face rotate_half layout (f32, CPU).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// x: [tokens, heads, head_dim], rotated in place. For pair i < head_dim/2 of token t the angle is
// positions[t] * inv_freq[i]; element i and i + head_dim/2 form the rotated pair.
void rope_f32(float* x, const int32_t* positions, const float* inv_freq, int64_t tokens, int64_t heads,
              int64_t head_dim);

}  // namespace lattice::kernels::cpu
