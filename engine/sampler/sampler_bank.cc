#include "engine/sampler/sampler_bank.h"

#include "engine/core/error.h"

#ifdef LATTICE_HAVE_CUDA
#include "engine/sampler/gpu_sampler.h"
#else
namespace lattice {
class GpuSampler {};  // never made without the CUDA backend
}  // namespace lattice
#endif

namespace lattice {

SamplerBank::SamplerBank(const ops::ExecContext* gpu) {
  if (gpu == nullptr || gpu->device.is_cpu()) return;
#ifdef LATTICE_HAVE_CUDA
  gpu_ = std::make_unique<GpuSampler>(*gpu);
#else
  LATTICE_THROW("sampling on ", gpu->device.str(), " needs a build with the CUDA backend");
#endif
}

SamplerBank::~SamplerBank() = default;
SamplerBank::SamplerBank(SamplerBank&&) noexcept = default;
SamplerBank& SamplerBank::operator=(SamplerBank&&) noexcept = default;

StepResult SamplerBank::sample(const StepPlan& plan, const StepOutput& out, int64_t vocab_size) {
  for (int64_t id : plan.released) states_.erase(id);
  LATTICE_CHECK(plan.sampling.size() == plan.batch.seqs.size(), "plan has ", plan.batch.seqs.size(),
                " sequences but ", plan.sampling.size(), " sampling entries");
  const bool on_gpu = !out.logits.device().is_cpu();
  LATTICE_CHECK(!on_gpu || gpu_, "logits on ", out.logits.device().str(), " but the sampler bank has no GPU context");
  StepResult result;
  result.step_id = plan.step_id;
  std::vector<size_t> sampled;  // indices into the plan, in order
  for (size_t i = 0; i < plan.batch.seqs.size(); ++i) {
    const SequenceStep& seq = plan.batch.seqs[i];
    State& state = states_[seq.seq_id];
    // Recomputation after preemption re-feeds earlier positions: the context is rebuilt from start_pos. A
    // prefix-cache hit skips positions the sampler may never have seen: the plan carries them.
    const std::vector<int32_t>& prefix = plan.sampling[i].context_prefix;
    if (!prefix.empty()) {
      LATTICE_CHECK(static_cast<int64_t>(prefix.size()) == seq.start_pos, "sequence ", seq.seq_id, " starts at ",
                    seq.start_pos, " after a cached prefix of ", prefix.size(), " tokens");
      state.context = prefix;
    }
    LATTICE_CHECK(seq.start_pos <= static_cast<int64_t>(state.context.size()), "sequence ", seq.seq_id,
                  " starts at position ", seq.start_pos, " but the sampler has seen only ", state.context.size(),
                  " tokens");
    state.context.resize(static_cast<size_t>(seq.start_pos));
    state.context.insert(state.context.end(), seq.tokens.begin(), seq.tokens.end());
    if (plan.sampling[i].sample) sampled.push_back(i);
  }
  if (on_gpu) {
#ifdef LATTICE_HAVE_CUDA
    LATTICE_CHECK(out.logits.dim(1) == vocab_size, "logits have ", out.logits.dim(1), " columns for a vocabulary of ",
                  vocab_size);
    std::vector<GpuSampleRequest> requests;
    for (size_t i : sampled) {
      const SequenceSampling& s = plan.sampling[i];
      requests.push_back({out.row_begin.at(i + 1) - 1, &s.params, s.seed, &states_[plan.batch.seqs[i].seq_id].context,
                          s.prompt_len});
    }
    result.tokens = gpu_->sample(out.logits, requests);
#endif
    return result;
  }
  for (size_t i : sampled) {
    const SequenceSampling& s = plan.sampling[i];
    State& state = states_[plan.batch.seqs[i].seq_id];
    if (!state.sampler) state.sampler = std::make_unique<SequenceSampler>(s.params, s.seed);
    const Tensor logits = out.next_token_logits(i);
    // A failure confined to this row ends its request alone (the scheduler reads the error), not the step.
    try {
      result.tokens.push_back(state.sampler->sample(logits.data<float>(), vocab_size, state.context,
                                                    static_cast<size_t>(s.prompt_len)));
    } catch (const Error& e) {
      SampledToken failed;
      failed.error = e.what();
      result.tokens.push_back(std::move(failed));
    }
  }
  return result;
}

}  // namespace lattice
