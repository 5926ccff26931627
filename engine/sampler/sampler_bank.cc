#include "engine/sampler/sampler_bank.h"

#include "engine/core/error.h"

namespace lattice {

StepResult SamplerBank::sample(const StepPlan& plan, const StepOutput& out, int64_t vocab_size) {
  for (int64_t id : plan.released) states_.erase(id);
  LATTICE_CHECK(plan.sampling.size() == plan.batch.seqs.size(), "plan has ", plan.batch.seqs.size(),
                " sequences but ", plan.sampling.size(), " sampling entries");
  StepResult result;
  result.step_id = plan.step_id;
  for (size_t i = 0; i < plan.batch.seqs.size(); ++i) {
    const SequenceStep& seq = plan.batch.seqs[i];
    const SequenceSampling& s = plan.sampling[i];
    State& state = states_[seq.seq_id];
    if (!state.sampler) state.sampler = std::make_unique<SequenceSampler>(s.params, s.seed);
    // Recomputation after preemption re-feeds earlier positions: the context is rebuilt from start_pos.
    LATTICE_CHECK(seq.start_pos <= static_cast<int64_t>(state.context.size()), "sequence ", seq.seq_id,
                  " starts at position ", seq.start_pos, " but the sampler has seen only ", state.context.size(),
                  " tokens");
    state.context.resize(static_cast<size_t>(seq.start_pos));
    state.context.insert(state.context.end(), seq.tokens.begin(), seq.tokens.end());
    if (!s.sample) continue;
    const Tensor logits = out.next_token_logits(i);
    result.tokens.push_back(state.sampler->sample(logits.data<float>(), vocab_size, state.context,
                                                  static_cast<size_t>(s.prompt_len)));
  }
  return result;
}

}  // namespace lattice
