// Paged attention op: attends causally over each sequence's cached context; it only reads the cache (this
// step's K/V were written by rope_write_kv). The inputs are views of the step's packed metadata
// (engine/step_metadata.h), on the same device as q.
#pragma once

#include <cstdint>

#include "engine/core/tensor.h"
#include "engine/ops/exec_context.h"

namespace lattice::ops {

struct AttentionInputs {
  Tensor block_tables;  // i32 [seqs, max_blocks]: sequence s's blocks, padded with 0 past its context
  Tensor q_begins;      // i32 [seqs]: sequence s owns q rows [q_begins[s], q_begins[s] + q_lens[s])
  Tensor q_lens;        // i32 [seqs]: its new tokens, the last q_lens[s] positions of its context
  Tensor context_lens;  // i32 [seqs]: positions in the cache, this step's included
  int64_t max_q_len = 0;        // host bounds >= every q_lens[s] / context_lens[s]; they size the GPU grid (a
  int64_t max_context_len = 0;  // CUDA graph fixes them), so they may exceed the real values
  int64_t sliding_window = 0;   // > 0: a query at position p sees only [p - sliding_window + 1, p] (Mistral)
};

// q, out: [tokens, heads, head_dim]; k_cache, v_cache: [num_blocks, block_size, kv_heads, head_dim], one dtype.
// Row j of sequence s sees cache positions [0, context_lens[s] - q_lens[s] + j] (the last sliding_window of them
// when in.sliding_window > 0); rows no sequence owns are not written. A step with max_q_len == 1 (pure decode; q_lens[s] <= 1 and q_begins[s] == s, as a packed decode
// step has them) takes the split-K decode kernel on the GPU, which needs ctx.scratch of
// attention_scratch_bytes(seqs, heads, head_dim, max_context_len) bytes. On the CPU the metadata values are
// checked (block ids inside the cache, lengths within the bounds); on a GPU they are trusted.
void paged_attention(const ExecContext& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const AttentionInputs& in, float scale, Tensor& out);

// Scratch bytes paged_attention needs on a GPU for up to `seqs` sequences of up to `max_context_len` tokens.
size_t attention_scratch_bytes(int64_t seqs, int64_t heads, int64_t head_dim, int64_t max_context_len);

}  // namespace lattice::ops
