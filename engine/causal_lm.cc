#include "engine/causal_lm.h"

namespace lattice {

StepOutput CausalLM::forward(const StepBatch& batch, KvCache& cache) {
  Tensor hidden = embed(batch);
  run_layers(hidden, batch, cache);
  return head(hidden, batch);
}

}  // namespace lattice
