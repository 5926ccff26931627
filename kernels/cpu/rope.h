// Rotary position embedding in the Hugging Face rotate_half layout, fused with the paged KV cache write
// (f32, CPU). Mirrors kernels/cuda/rope_kv.cuh.
#pragma once

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cpu {

// qkv: [tokens, (heads + 2 * kv_heads) * head_dim], the fused projection's output (q heads, then k, then v);
// not modified. For pair i < head_dim/2 of token t the angle is positions[t] * inv_freq[i] (taken in f64);
// element i and i + head_dim/2 form the rotated pair. Writes rotated q to q_out [tokens, heads, head_dim],
// and rotated k and v as they are to k_cache / v_cache [num_blocks, block_size, kv_heads, head_dim] at slot
// slots[t] (a negative slot skips the write, for padding tokens).
void rope_write_kv_f32(const float* qkv, const int32_t* positions, const float* inv_freq, const int64_t* slots,
                       float* k_cache, float* v_cache, float* q_out, int64_t tokens, const PagedLayout& layout);

}  // namespace lattice::kernels::cpu
