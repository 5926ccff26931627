// The step API: one engine step runs a batch of sequences, each contributing any number of new tokens
// (a prefill chunk or one decode token) over the paged KV cache, and returns logits.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace lattice {

struct SequenceStep {
  int64_t seq_id = 0;
  std::vector<int32_t> tokens;       // new tokens, at positions start_pos, start_pos + 1, ...
  int64_t start_pos = 0;             // tokens of this sequence already in the KV cache
  std::vector<int32_t> block_table;  // KV blocks covering start_pos + tokens.size() positions
  bool all_logits = false;           // logits after every new token, not only the last

  int64_t context_len() const { return start_pos + static_cast<int64_t>(tokens.size()); }
};

struct StepBatch {
  std::vector<SequenceStep> seqs;

  int64_t num_tokens() const;
};

struct StepOutput {
  Tensor logits;                   // f32 [rows, vocab], on the device the step ran on (a view of the runner's buffer)
  std::vector<int64_t> row_begin;  // sequence i owns rows [row_begin[i], row_begin[i + 1]); size seqs + 1

  // The logits that predict sequence i's next token (its last row): f32 [vocab], a view.
  Tensor next_token_logits(size_t i) const;
};

}  // namespace lattice
