// Everything a step's kernels read besides weights and activations, built once per step from the step plan
// (every rank builds it from the plan it already receives): token ids and positions, each new token's cache
// slot, the rows whose logits are wanted, and the attention inputs (q ranges, context lengths, block tables
// padded to the step's widest table), and the rows whose token ids the device writes from the previous step's
// sampled tokens (async scheduling: ModelRunner's DeviceTokenFeed).
//
// All of it lives in one buffer at offsets fixed by the capacity given at construction, so views keep their
// addresses from step to step. On the CPU the kernels read the host buffer; on a GPU the host buffer is pinned
// and reaches a fixed device mirror with one asynchronous copy per step (the next build waits for that copy).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/decode_buckets.h"
#include "engine/ops/attention.h"
#include "engine/ops/exec_context.h"
#include "engine/step.h"

namespace lattice {

// A token the step takes on the device from the previous step's sampled tokens: its row among the step's tokens
// (its id in the batch is a placeholder) and its index in that step's tokens.
struct FedToken {
  int32_t row = 0;
  int32_t source = 0;
};

struct StepCapacity {
  int64_t max_tokens = 0;          // new tokens per step
  int64_t max_seqs = 0;            // sequences per step
  int64_t max_blocks_per_seq = 0;  // ceil(longest context / block size)
};

class StepMetadata {
 public:
  // Allocates the buffers once (pinned host + device mirror when ctx is a GPU).
  StepMetadata(const StepCapacity& capacity, const ops::ExecContext& ctx);
  ~StepMetadata();
  StepMetadata(const StepMetadata&) = delete;
  StepMetadata& operator=(const StepMetadata&) = delete;

  // Fills the buffer from `batch` and makes it visible to ctx's device (enqueued on its stream). Checks what the
  // kernels cannot: sizes within capacity, token ids in [0, vocab), contexts within max_positions, block tables
  // covering each context with blocks in [0, num_blocks).
  // With `pad` (a pure-decode batch and a bucket that holds it, DecodeBuckets::find), the step is laid out as
  // `pad->seqs` one-token rows with max_context_len = pad->context and block tables ceil(pad->context / block)
  // wide, so a CUDA graph captured for the bucket reads the same addresses and bounds. The rows past the batch's
  // are padding: token 0 at position 0, slot -1 (its K/V is written nowhere), a context of one position in block
  // 0; their logits are computed and never returned (row_begin() covers the batch's sequences only).
  // `fed` lists the rows whose ids the device overwrites after the upload (fed()); at most one per sequence.
  void build(const StepBatch& batch, int64_t block_size, int32_t num_blocks, int64_t vocab, int64_t max_positions,
             const DecodeBucket* pad = nullptr, const std::vector<FedToken>& fed = {});

  int64_t num_tokens() const { return tokens_; }
  int64_t num_seqs() const { return seqs_; }
  int64_t num_logit_rows() const { return logit_rows_; }
  // (query, key) pairs the batch's new tokens attend over, causally, no sliding window (padding rows not counted).
  double attention_pairs() const { return attention_pairs_; }

  // Views on ctx's device, valid until the next build().
  Tensor ids() const;         // i32 [tokens]
  Tensor positions() const;   // i32 [tokens]
  Tensor slots() const;       // i64 [tokens]
  Tensor logit_rows() const;  // i32 [rows]: the token rows whose logits the step returns, in batch order
  Tensor fed() const;         // i32 [fed, 2]: FedToken (row, source) pairs
  int64_t num_fed() const { return fed_count_; }
  ops::AttentionInputs attention() const;
  // Sequence i's logits are rows [row_begin[i], row_begin[i + 1]) of the step's logits (host).
  const std::vector<int64_t>& row_begin() const { return row_begin_; }

 private:
  struct Segment {
    size_t offset;
    DType dtype;
  };
  Tensor view(const Segment& s, std::vector<int64_t> shape) const;
  template <typename T> T* host(const Segment& s) const;

  StepCapacity cap_;
  ops::ExecContext ctx_;
  Segment ids_, positions_, slots_, logit_rows_seg_, q_begins_, q_lens_, context_lens_, fed_, block_tables_;
  size_t bytes_ = 0;
  struct Storage;
  std::unique_ptr<Storage> storage_;
  int64_t tokens_ = 0, seqs_ = 0, logit_rows_ = 0, fed_count_ = 0, block_stride_ = 1, max_q_len_ = 0,
          max_context_len_ = 0;
  double attention_pairs_ = 0;
  std::vector<int64_t> row_begin_;
};

}  // namespace lattice
