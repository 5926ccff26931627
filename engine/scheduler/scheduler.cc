#include "engine/scheduler/scheduler.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::none: break;
  }
  return "none";
}

Scheduler::Scheduler(CausalLM& model, KvCache& cache, SchedulerOptions options)
    : model_(model),
      cache_(cache),
      options_(std::move(options)),
      blocks_(cache.num_blocks(), static_cast<int32_t>(cache.shape().block_size)) {
  LATTICE_CHECK(options_.max_tokens_per_step > 0, "max_tokens_per_step must be > 0");
  LATTICE_CHECK(options_.max_seqs > 0, "max_seqs must be > 0");
}

void Scheduler::add(Request request) {
  const LmShape& shape = model_.lm_shape();
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  LATTICE_CHECK(n > 0, "request ", request.id, ": the prompt is empty");
  for (int32_t t : request.prompt)
    LATTICE_CHECK(t >= 0 && t < shape.vocab_size, "request ", request.id, ": token id ", t,
                  " is out of range for vocabulary size ", shape.vocab_size);
  LATTICE_CHECK(n < shape.max_positions, "request ", request.id, ": prompt of ", n,
                " tokens leaves no room to generate within the model's ", shape.max_positions, " positions");
  LATTICE_CHECK(blocks_.blocks_for(n + 1) <= blocks_.num_blocks(), "request ", request.id, ": prompt of ", n,
                " tokens does not fit the KV cache (", blocks_.num_blocks(), " blocks of ", blocks_.block_size(),
                " tokens)");
  LATTICE_CHECK(std::find(order_.begin(), order_.end(), request.id) == order_.end(), "request id ", request.id,
                " is already in use");
  try {
    request.params.validate(shape.vocab_size);
  } catch (const Error& e) {
    LATTICE_THROW("request ", request.id, ": ", e.what());
  }
  auto seq = std::make_unique<Sequence>();
  const uint64_t seed = request.params.seed.value_or(static_cast<uint64_t>(request.id) * 0x9e3779b97f4a7c15ull + 1);
  seq->sampler = std::make_unique<SequenceSampler>(request.params, seed);
  seq->tokens = request.prompt;
  seq->output.id = request.id;
  seq->output.prompt_tokens = n;
  seq->request = std::move(request);
  order_.push_back(seq->request.id);
  waiting_.push_back(std::move(seq));
}

void Scheduler::preempt(SeqList::iterator it) {
  Sequence& seq = **it;
  blocks_.free(seq.request.id);
  seq.computed = 0;  // recomputed from the prompt and the tokens generated so far
  ++stats_.preemptions;
  waiting_.push_front(std::move(*it));
  running_.erase(it);
}

Scheduler::Room Scheduler::make_room(Sequence& seq, int64_t tokens, std::vector<Planned>& planned) {
  while (!blocks_.grow(seq.request.id, tokens)) {
    if (running_.size() == 1) return Room::cache_full;  // seq alone fills the whole cache
    auto victim = std::prev(running_.end());             // the most recently admitted
    const bool self = victim->get() == &seq;
    std::erase_if(planned, [&](const Planned& p) { return p.seq == victim->get(); });
    preempt(victim);
    if (self) return Room::preempted_self;
  }
  return Room::ok;
}

std::vector<Scheduler::Planned> Scheduler::plan() {
  std::vector<Planned> planned;
  int64_t budget = options_.max_tokens_per_step;
  for (auto it = running_.begin(); it != running_.end() && budget > 0;) {
    Sequence& seq = **it;
    const int64_t pending = static_cast<int64_t>(seq.tokens.size()) - seq.computed;
    const int64_t chunk = std::min(pending, budget);
    auto next = std::next(it);
    switch (make_room(seq, seq.computed + chunk, planned)) {
      case Room::ok:
        planned.push_back({&seq, chunk});
        budget -= chunk;
        it = next;
        break;
      case Room::preempted_self:  // every sequence after it was younger and is preempted too
        it = running_.end();
        break;
      case Room::cache_full:
        finish(seq, FinishReason::length);
        it = running_.end();
        break;
    }
  }
  while (!waiting_.empty() && budget > 0 && static_cast<int64_t>(planned.size()) < options_.max_seqs) {
    Sequence& seq = *waiting_.front();
    const int64_t chunk = std::min(static_cast<int64_t>(seq.tokens.size()), budget);
    if (!blocks_.grow(seq.request.id, chunk)) break;  // waits for blocks to free up
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    planned.push_back({&seq, chunk});
    budget -= chunk;
  }
  return planned;
}

FinishReason Scheduler::finish_reason(const Sequence& seq, int32_t token) const {
  const SamplingParams& p = seq.request.params;
  if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end())
    return FinishReason::stop;
  if (!p.ignore_eos && std::find(options_.eos_token_ids.begin(), options_.eos_token_ids.end(), token) !=
                           options_.eos_token_ids.end())
    return FinishReason::stop;
  if (static_cast<int64_t>(seq.output.tokens.size()) >= p.max_tokens) return FinishReason::length;
  if (static_cast<int64_t>(seq.tokens.size()) >= model_.lm_shape().max_positions) return FinishReason::length;
  return FinishReason::none;
}

void Scheduler::finish(Sequence& seq, FinishReason reason) {
  blocks_.free(seq.request.id);
  seq.output.finish = reason;
  finished_[seq.request.id] = std::move(seq.output);
  auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s.get() == &seq; });
  running_.erase(it);
}

std::vector<TokenEvent> Scheduler::step() {
  std::vector<TokenEvent> events;
  const std::vector<Planned> planned = plan();
  if (planned.empty()) return events;

  StepBatch batch;
  for (const Planned& p : planned) {
    SequenceStep s;
    s.seq_id = p.seq->request.id;
    s.start_pos = p.seq->computed;
    s.tokens.assign(p.seq->tokens.begin() + p.seq->computed, p.seq->tokens.begin() + p.seq->computed + p.chunk);
    s.block_table = blocks_.table(s.seq_id);
    batch.seqs.push_back(std::move(s));
  }
  const StepOutput out = model_.forward(batch, cache_);
  ++stats_.steps;

  const int64_t vocab = model_.lm_shape().vocab_size;
  for (size_t i = 0; i < planned.size(); ++i) {
    Sequence& seq = *planned[i].seq;
    seq.computed += planned[i].chunk;
    if (seq.computed < static_cast<int64_t>(seq.tokens.size())) {  // prefill continues next step
      stats_.prompt_tokens += planned[i].chunk;
      continue;
    }
    if (planned[i].chunk > 1 || seq.output.tokens.empty()) stats_.prompt_tokens += planned[i].chunk;
    SampledToken sampled = seq.sampler->sample(out.next_token_logits(i).data<float>(), vocab, seq.tokens,
                                               seq.request.prompt.size());
    seq.tokens.push_back(sampled.token);
    seq.output.tokens.push_back(sampled);
    ++stats_.generated_tokens;
    const FinishReason reason = finish_reason(seq, sampled.token);
    events.push_back({seq.request.id, std::move(sampled), reason});
    if (reason != FinishReason::none) finish(seq, reason);
  }
  return events;
}

std::vector<RequestOutput> Scheduler::run(const std::function<void(const TokenEvent&)>& on_token) {
  while (has_work()) {
    for (const TokenEvent& e : step())
      if (on_token) on_token(e);
  }
  std::vector<RequestOutput> outputs;
  for (int64_t id : order_) {
    auto it = finished_.find(id);
    if (it != finished_.end()) outputs.push_back(std::move(it->second));
  }
  finished_.clear();
  order_.clear();
  return outputs;
}

}  // namespace lattice
