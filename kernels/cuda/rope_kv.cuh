// RoPE applied while writing K/V into the paged cache (CUDA), mirroring kernels/cpu rope_f32 + write_kv_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/paged_layout.h"

namespace lattice::kernels::cuda {

// q: [tokens, heads, head_dim] and k: [tokens, kv_heads, head_dim] are rotated in place (Hugging Face
// rotate_half: element i and i + head_dim/2 form a pair, angle positions[t] * inv_freq[i] taken in f64 as
// the CPU op does); then the rotated k and v: [tokens, kv_heads, head_dim] are stored at cache slot
// slots[t] (slot = block * block_size + offset; a negative slot skips the write, for padding tokens).
// positions, inv_freq [head_dim/2], slots live on the device. Instantiated for T in {float, __half, __nv_bfloat16}.
template <typename T>
void rope_write_kv(T* q, T* k, const T* v, const int32_t* positions, const float* inv_freq, const int64_t* slots,
                   T* k_cache, T* v_cache, int64_t tokens, const PagedLayout& layout, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
