// Attention over a paged KV cache (f32, CPU): causal prefill chunks and decode tokens in one call, the
// query heads of a grouped-query group reading each K/V position of their shared head once. Only reads the cache
// (kernels/cpu/rope.h rope_write_kv_f32 writes it). Same inputs as kernels/cuda paged_attention_prefill.
#pragma once

#include <cstdint>

#include "kernels/paged_layout.h"

namespace lattice::kernels::cpu {

// q, out: [tokens, heads, head_dim]. Sequence s owns q rows [q_begins[s], q_begins[s] + q_lens[s]), the last
// q_lens[s] positions of a context of context_lens[s] tokens whose blocks are
// block_tables[s * max_blocks_per_seq + i]; row j of the chunk, at position p = context_lens[s] - q_lens[s] + j,
// sees positions [0, p], or with sliding_window > 0 only the last sliding_window of them, [p - sliding_window + 1, p]
// (Mistral). Rows no sequence owns are not written.
void paged_attention_f32(const float* q, const float* k_cache, const float* v_cache, const int32_t* block_tables,
                         int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                         const int32_t* context_lens, int64_t num_seqs, float* out, const PagedLayout& layout,
                         float scale, int64_t sliding_window = 0);

}  // namespace lattice::kernels::cpu
