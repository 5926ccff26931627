// Attention over a paged KV cache (f32, CPU): causal prefill chunks and decode tokens in one call,
// grouped-query heads read their shared KV head directly (no per-head copies).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// Cache layout of one layer: [num_blocks, block_size, kv_heads, head_dim]; slot = block * block_size + offset.
struct PagedLayout {
  int64_t heads;
  int64_t kv_heads;
  int64_t head_dim;
  int64_t block_size;
};

// One sequence's share of the batch: q rows [q_begin, q_begin + q_len) are its new tokens, placed at the
// last q_len positions of a context of context_len tokens whose blocks are block_table[0 .. ceil(context_len/bs)).
struct AttentionSeq {
  int64_t q_begin;
  int64_t q_len;
  int64_t context_len;
  const int32_t* block_table;
};

// k, v: [tokens, kv_heads, head_dim]; slots[t] is the cache slot of token t.
void write_kv_f32(const float* k, const float* v, const int64_t* slots, float* k_cache, float* v_cache,
                  int64_t tokens, const PagedLayout& layout);

// q, out: [tokens, heads, head_dim]. Token j of a sequence sees cache positions [0, context_len - q_len + j].
void paged_attention_f32(const float* q, const float* k_cache, const float* v_cache, const AttentionSeq* seqs,
                         int64_t num_seqs, float* out, const PagedLayout& layout, float scale);

}  // namespace lattice::kernels::cpu
