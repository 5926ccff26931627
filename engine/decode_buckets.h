// The shapes a pure-decode step is padded to so that a CUDA graph captured once per shape can replay it: a
// batch-size bucket (1, 2, 4, ..., 256, then every 64, up to the engine's --max-seqs) and a context bucket
// (512, 1024, ... doubling, up to the model's positions). The context bucket exists because the split-K decode
// attention sizes its grid from the step's maximum context and the block tables' stride from the blocks per
// sequence: a graph fixes both, and the kernels exit early past each sequence's real length. Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/step.h"

namespace lattice {

struct DecodeBucket {
  int64_t seqs = 0;     // rows the step is padded to (one token per sequence)
  int64_t context = 0;  // the attention's max_context_len; block tables are ceil(context / block) wide

  bool operator==(const DecodeBucket&) const = default;
};

class DecodeBuckets {
 public:
  // max_seqs: sequences per step (--max-seqs, capped by --max-tokens-per-step since a decode row is one token);
  // max_positions: the model's longest context. Both > 0.
  DecodeBuckets(int64_t max_seqs, int64_t max_positions);

  // The smallest bucket holding `batch`, or nullopt when the batch is not pure decode (a sequence with other than
  // one new token, or asking for every row's logits) or is larger than every bucket.
  std::optional<DecodeBucket> find(const StepBatch& batch) const;

  const std::vector<int64_t>& batch_sizes() const { return seqs_; }
  const std::vector<int64_t>& context_sizes() const { return contexts_; }

 private:
  std::vector<int64_t> seqs_, contexts_;
};

}  // namespace lattice
