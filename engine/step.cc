#include "engine/step.h"

namespace lattice {

int64_t StepBatch::num_tokens() const {
  int64_t n = 0;
  for (const auto& s : seqs) n += static_cast<int64_t>(s.tokens.size());
  return n;
}

Tensor StepOutput::next_token_logits(size_t i) const {
  LATTICE_CHECK(i + 1 < row_begin.size(), "sequence index ", i, " out of range for ", row_begin.size() - 1,
                " sequences");
  return logits.rows(row_begin[i + 1] - 1, row_begin[i + 1]).reshape({logits.dim(1)});
}

}  // namespace lattice
