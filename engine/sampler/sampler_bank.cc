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
  LATTICE_CHECK(queue_.empty(), "sample() with ", queue_.size(), " steps enqueued and not collected");
  enqueue(plan, out, vocab_size);
  return collect();
}

void SamplerBank::apply(const Fixup& f, const StepResult& result) {
  const auto it = states_.find(f.seq);
  if (it == states_.end() || it->second.context.size() <= f.position) return;  // released meanwhile
  const SampledToken& t = result.tokens.at(f.index);
  it->second.context[f.position] = t.error.empty() ? t.token : 0;
}

void SamplerBank::finish(Queued& q) {
  if (q.slot < 0) return;
#ifdef LATTICE_HAVE_CUDA
  q.result.tokens = gpu_->finish(q.slot);
#endif
  q.slot = -1;
  for (const Fixup& f : q.fixups) apply(f, q.result);
  q.fixups.clear();
}

StepResult SamplerBank::collect() {
  LATTICE_CHECK(!queue_.empty(), "collect() without an enqueued step");
  finish(queue_.front());
  StepResult r = std::move(queue_.front().result);
  queue_.pop_front();
  return r;
}

const StepResult& SamplerBank::newest_result() {
  LATTICE_CHECK(!queue_.empty(), "no enqueued step to take tokens from");
  finish(queue_.back());
  return queue_.back().result;
}

const int32_t* SamplerBank::newest_device_tokens() const {
#ifdef LATTICE_HAVE_CUDA
  if (gpu_ && !queue_.empty() && queue_.back().slot >= 0) return gpu_->device_tokens(queue_.back().slot);
#endif
  return nullptr;
}

void SamplerBank::enqueue(const StepPlan& plan, const StepOutput& out, int64_t vocab_size) {
  for (int64_t id : plan.released) states_.erase(id);
  LATTICE_CHECK(plan.sampling.size() == plan.batch.seqs.size(), "plan has ", plan.batch.seqs.size(),
                " sequences but ", plan.sampling.size(), " sampling entries");
  const bool on_gpu = !out.logits.device().is_cpu();
  LATTICE_CHECK(!on_gpu || gpu_, "logits on ", out.logits.device().str(), " but the sampler bank has no GPU context");
  Queued queued;
  StepResult& result = queued.result;
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
  // Placeholders (rows fed on the device): their contexts take the tokens once the step before is finished.
  if (!plan.pending.empty()) {
    LATTICE_CHECK(!queue_.empty() && queue_.back().result.step_id + 1 == plan.step_id, "step ", plan.step_id,
                  " has pending tokens but step ", plan.step_id - 1, " is not the newest enqueued");
    Queued& previous = queue_.back();
    for (const PendingToken& p : plan.pending) {
      const SequenceStep& seq = plan.batch.seqs.at(p.seq);
      LATTICE_CHECK(!plan.sampling[p.seq].params.has_penalties(), "sequence ", seq.seq_id,
                    " has penalties: its token must be fed on the host");
      const Fixup f{seq.seq_id, static_cast<size_t>(seq.start_pos), p.result_index};
      if (previous.slot >= 0) previous.fixups.push_back(f);
      else apply(f, previous.result);
    }
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
    queued.slot = gpu_->enqueue(out.logits, requests);
#endif
    queue_.push_back(std::move(queued));
    return;
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
  queue_.push_back(std::move(queued));
}

}  // namespace lattice
