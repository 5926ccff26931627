// One engine step in a test: a ModelRunner sized for exactly this batch, on the CPU. The returned logits keep
// the runner's buffer alive, so they stay valid after the runner is gone.
#pragma once

#include <algorithm>

#include "engine/model_runner.h"

namespace lattice::testing {

inline StepOutput forward(CausalLM& model, KvCache& cache, const StepBatch& batch,
                          const ops::ExecContext& exec = ops::ExecContext::cpu()) {
  ModelRunner runner(model, cache, exec,
                     {std::max<int64_t>(batch.num_tokens(), 1), std::max<int64_t>(static_cast<int64_t>(batch.seqs.size()), 1)});
  return runner.forward(batch);
}

}  // namespace lattice::testing
