// Paged attention op: writes this step's K/V into the cache, then attends causally over each
// sequence's cached context. Metadata is built once per step and shared by every layer.
#pragma once

#include <vector>

#include "engine/core/tensor.h"
#include "engine/step.h"
#include "kernels/cpu/paged_attention.h"

namespace lattice::ops {

class AttentionMetadata {
 public:
  // Validates that each block table covers its context and names blocks inside [0, num_blocks).
  // `batch` must outlive the metadata (block tables are referenced, not copied).
  AttentionMetadata(const StepBatch& batch, int64_t block_size, int64_t num_blocks);

  const std::vector<kernels::cpu::AttentionSeq>& seqs() const { return seqs_; }
  const std::vector<int64_t>& slots() const { return slots_; }  // [tokens] cache slot of each new token
  int64_t block_size() const { return block_size_; }

 private:
  std::vector<kernels::cpu::AttentionSeq> seqs_;
  std::vector<int64_t> slots_;
  int64_t block_size_;
};

// q, out: f32 [tokens, heads, head_dim]; k, v: f32 [tokens, kv_heads, head_dim];
// k_cache, v_cache: f32 [num_blocks, block_size, kv_heads, head_dim].
void paged_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMetadata& meta,
                     Tensor& k_cache, Tensor& v_cache, float scale, Tensor& out);

}  // namespace lattice::ops
