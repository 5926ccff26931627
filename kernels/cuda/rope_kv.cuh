// RoPE applied while writing K/V into the paged cache (CUDA), mirroring kernels/cpu/rope.h rope_write_kv_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cuda {

// qkv: [tokens, (heads + 2 * kv_heads) * head_dim], the fused projection's output (q heads, then k, then v);
// not modified. Rotates q and k (Hugging Face rotate_half: element i and i + head_dim/2 form a pair, angle
// positions[t] * inv_freq[i] taken in f64 as the CPU op does), writes rotated q to q_out [tokens, heads,
// head_dim], and the rotated k and v to k_cache / v_cache [num_blocks, block_size, kv_heads, head_dim] at slot
// slots[t] (a negative slot skips the write, for padding tokens). One kernel, no intermediate copies.
// positions, inv_freq [head_dim/2], slots live on the device. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void rope_write_kv(const T* qkv, const int32_t* positions, const float* inv_freq, const int64_t* slots, T* k_cache,
                   T* v_cache, T* q_out, int64_t tokens, const PagedLayout& layout, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
