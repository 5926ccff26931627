#include "engine/scheduler/scheduler.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
    case FinishReason::none: break;
  }
  return "none";
}

Scheduler::Scheduler(const LmShape& shape, int32_t num_blocks, int32_t block_size, SchedulerOptions options)
    : shape_(shape), options_(std::move(options)), blocks_(num_blocks, block_size, options_.prefix_caching) {
  LATTICE_CHECK(options_.max_tokens_per_step > 0, "max_tokens_per_step must be > 0, got ", options_.max_tokens_per_step);
  LATTICE_CHECK(options_.max_seqs > 0, "max_seqs must be > 0, got ", options_.max_seqs);
}

void Scheduler::add(Request request) {
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  LATTICE_CHECK(n > 0, "request ", request.id, ": the prompt is empty");
  for (int32_t t : request.prompt)
    LATTICE_CHECK(t >= 0 && t < shape_.vocab_size, "request ", request.id, ": token id ", t,
                  " is out of range for vocabulary size ", shape_.vocab_size);
  LATTICE_CHECK(n < shape_.max_positions, "request ", request.id, ": prompt of ", n,
                " tokens leaves no room to generate within the model's ", shape_.max_positions, " positions");
  LATTICE_CHECK(blocks_.blocks_for(n + 1) <= blocks_.num_blocks(), "request ", request.id, ": prompt of ", n,
                " tokens does not fit the KV cache (", blocks_.num_blocks(), " blocks of ", blocks_.block_size(),
                " tokens)");
  auto same_id = [&](const SeqPtr& s) { return s->request.id == request.id; };
  LATTICE_CHECK(finished_.count(request.id) == 0 && std::none_of(waiting_.begin(), waiting_.end(), same_id) &&
                    std::none_of(running_.begin(), running_.end(), same_id),
                "request id ", request.id, " is already in use");
  try {
    request.params.validate(shape_.vocab_size, options_.max_top_k);
  } catch (const Error& e) {
    LATTICE_THROW("request ", request.id, ": ", e.what());
  }
  auto seq = std::make_unique<Sequence>();
  seq->seed = request.params.seed.value_or(static_cast<uint64_t>(request.id) * 0x9e3779b97f4a7c15ull + 1);
  seq->arrival = arrivals_++;
  seq->arrived_at = RequestInbox::Clock::now();
  seq->tokens = request.prompt;
  seq->output.id = request.id;
  seq->output.prompt_tokens = n;
  seq->request = std::move(request);
  order_.push_back(seq->request.id);
  enqueue_waiting(std::move(seq));
}

void Scheduler::enqueue_waiting(SeqPtr seq) {
  auto before = std::find_if(waiting_.begin(), waiting_.end(), [&](const SeqPtr& w) {
    return w->request.priority < seq->request.priority ||
           (w->request.priority == seq->request.priority && w->arrival > seq->arrival);
  });
  waiting_.insert(before, std::move(seq));
}

std::vector<Scheduler::Sequence*> Scheduler::victims(std::optional<int32_t> below_priority) const {
  std::vector<Sequence*> out;
  for (auto it = running_.rbegin(); it != running_.rend(); ++it)  // most recently admitted first
    if (!(*it)->in_flight && (!below_priority || (*it)->request.priority < *below_priority)) out.push_back(it->get());
  std::stable_sort(out.begin(), out.end(),
                   [](const Sequence* a, const Sequence* b) { return a->request.priority < b->request.priority; });
  return out;
}

void Scheduler::preempt(Sequence* seq, std::vector<Planned>& planned, int64_t& budget) {
  for (const Planned& p : planned)
    if (p.seq == seq) budget += p.chunk;  // its share of the step goes back to the others
  std::erase_if(planned, [&](const Planned& p) { return p.seq == seq; });
  blocks_.free(seq->request.id);
  seq->computed = 0;  // recomputed from the prompt and the tokens generated so far
  ++stats_.preemptions;
  auto it = std::find_if(running_.begin(), running_.end(), [&](const SeqPtr& s) { return s.get() == seq; });
  SeqPtr owned = std::move(*it);
  running_.erase(it);
  enqueue_waiting(std::move(owned));
}

bool Scheduler::make_room(Sequence& seq, int64_t tokens, std::optional<int32_t> below_priority,
                          std::vector<Planned>& planned, int64_t& budget) {
  if (blocks_.grow(seq.request.id, tokens)) return true;
  const std::vector<Sequence*> candidates = victims(below_priority);
  std::vector<int64_t> others;  // preemptible; blocks they share with seq or with others staying stay held
  for (const Sequence* v : candidates)
    if (v != &seq) others.push_back(v->request.id);
  if (blocks_.reclaimable(others) < blocks_.blocks_needed(seq.request.id, tokens)) {
    // Preempting everyone allowed would not be enough: preempt no one. If nothing is in flight either,
    // a running sequence has outgrown the whole cache.
    if (in_flight_.empty() && below_priority == std::nullopt) {
      pending_events_.push_back({seq.request.id, std::nullopt, FinishReason::length});
      finish(seq, FinishReason::length);
    }
    return false;
  }
  for (Sequence* victim : candidates) {
    preempt(victim, planned, budget);
    if (victim == &seq) return false;  // it was the least important: it waits
    if (blocks_.grow(seq.request.id, tokens)) return true;
  }
  return false;
}

std::optional<StepPlan> Scheduler::schedule(int64_t max_seqs) {
  std::vector<Planned> planned;
  int64_t budget = options_.max_tokens_per_step;
  const int64_t seq_cap = std::min(max_seqs, options_.max_seqs);
  std::vector<Sequence*> candidates;
  for (const SeqPtr& s : running_)
    if (!s->in_flight) candidates.push_back(s.get());
  for (Sequence* seq : candidates) {
    if (budget == 0 || static_cast<int64_t>(planned.size()) >= seq_cap) break;
    if (std::none_of(running_.begin(), running_.end(), [&](const SeqPtr& s) { return s.get() == seq; }))
      continue;  // preempted while making room for an earlier one
    const int64_t chunk = std::min(static_cast<int64_t>(seq->tokens.size()) - seq->computed, budget);
    if (!make_room(*seq, seq->computed + chunk, std::nullopt, planned, budget)) continue;
    planned.push_back(plan_chunk(*seq, chunk, false));
    budget -= chunk;
  }
  auto next = waiting_.begin();
  while (next != waiting_.end() && budget > 0 && static_cast<int64_t>(planned.size()) < seq_cap) {
    Sequence& seq = **next;
    const int64_t n = static_cast<int64_t>(seq.tokens.size());
    const int64_t hit = blocks_.attach_prefix(seq.request.id, seq.tokens, n - 1);
    if (follows_pending(seq, hit, planned)) {
      blocks_.free(seq.request.id);
      ++next;
      continue;
    }
    const int64_t chunk = std::min(n - hit, budget);
    // A higher-priority arrival may displace lower-priority sequences that are not in flight.
    if (!make_room(seq, hit + chunk, seq.request.priority, planned, budget)) {
      blocks_.free(seq.request.id);  // the hit goes back to the cache
      break;
    }
    seq.computed = hit;
    if (blocks_.caching()) {
      stats_.prefix_cache_queries += n;
      stats_.prefix_cache_hits += hit;
    }
    if (!seq.admitted) seq.output.cached_tokens = hit;
    seq.admitted = true;
    running_.push_back(std::move(*next));
    next = waiting_.erase(next);
    planned.push_back(plan_chunk(seq, chunk, hit > 0));
    budget -= chunk;
  }
  if (planned.empty()) return std::nullopt;
  return make_plan(planned);
}

std::optional<StepPlan> Scheduler::schedule_ahead() {
  // One step in flight and nothing to admit or prefill: a waiting request needs a plan with its prefill, which
  // waits for the tokens (planning it ahead would delay its admission by a step or mix prefill into the step).
  if (!options_.async_scheduling || in_flight_.size() != 1 || !waiting_.empty()) return std::nullopt;
  if (std::any_of(running_.begin(), running_.end(), [](const SeqPtr& s) { return s->in_flight == 0; }))
    return std::nullopt;
  std::vector<Planned> planned;
  int32_t result_index = 0;
  for (const Planned& p : in_flight_.front().seqs) {
    if (p.seq == nullptr) {  // a discarded row of a sequence that has finished
      result_index += p.sample ? 1 : 0;
      continue;
    }
    if (!p.sample) return std::nullopt;  // a prefill chunk: its next chunk waits, and so does the step
    const int32_t feed = result_index++;
    Sequence& seq = *p.seq;
    const int64_t next = static_cast<int64_t>(seq.tokens.size());  // the position of the token being sampled
    // A sequence that the token in flight ends for length (or a cancelled one) gets no row; one that it ends with
    // a stop token or EOS cannot be known yet and gets a row that is discarded.
    if (seq.cancel_requested || static_cast<int64_t>(seq.output.tokens.size()) + 1 >= seq.request.params.max_tokens ||
        next + 1 >= shape_.max_positions)
      continue;
    if (static_cast<int64_t>(planned.size()) >= std::min(options_.max_seqs, options_.max_tokens_per_step)) break;
    // No preemption while every sequence is in flight: short of a block, wait for the tokens and plan normally.
    if (!blocks_.grow(seq.request.id, next + 1)) return std::nullopt;
    // No `fills`: the block this row may complete is hashed once its token is known; a sequence admitted
    // meanwhile computes that block itself rather than waiting for it.
    Planned ahead{&seq, 1, true};
    ahead.feed = feed;
    planned.push_back(std::move(ahead));
  }
  if (planned.empty()) return std::nullopt;
  ++stats_.ahead_steps;
  return make_plan(planned);
}

Scheduler::Planned Scheduler::plan_chunk(Sequence& seq, int64_t chunk, bool after_hit) const {
  const int64_t end = seq.computed + chunk, bs = blocks_.block_size();
  Planned p{&seq, chunk, end == static_cast<int64_t>(seq.tokens.size()), after_hit};
  if (blocks_.caching() && end / bs > seq.computed / bs) {
    const std::vector<uint64_t> hashes = blocks_.chain_hashes(seq.tokens, end / bs);
    p.fills.assign(hashes.begin() + seq.computed / bs, hashes.end());
  }
  return p;
}

bool Scheduler::follows_pending(const Sequence& seq, int64_t hit, const std::vector<Planned>& planned) const {
  const int64_t bs = blocks_.block_size(), next_block = hit / bs;
  if (!blocks_.caching() || (next_block + 1) * bs > static_cast<int64_t>(seq.tokens.size()) - 1) return false;
  const uint64_t next = blocks_.chain_hashes(seq.tokens, next_block + 1).back();
  auto fills = [&](const Planned& p) { return std::find(p.fills.begin(), p.fills.end(), next) != p.fills.end(); };
  if (std::any_of(planned.begin(), planned.end(), fills)) return true;
  return std::any_of(in_flight_.begin(), in_flight_.end(),
                     [&](const InFlight& step) { return std::any_of(step.seqs.begin(), step.seqs.end(), fills); });
}

StepPlan Scheduler::make_plan(const std::vector<Planned>& planned) {
  StepPlan plan;
  plan.step_id = next_step_++;
  plan.released = std::move(released_);
  released_.clear();
  for (const Planned& p : planned) {
    Sequence& s = *p.seq;
    ++s.in_flight;
    SequenceStep step;
    step.seq_id = s.request.id;
    if (p.feed >= 0) {  // the token at position tokens.size() is being sampled by the step in flight
      step.start_pos = static_cast<int64_t>(s.tokens.size());
      step.tokens = {0};
      plan.pending.push_back({plan.batch.seqs.size(), static_cast<size_t>(p.feed)});
    } else {
      step.start_pos = s.computed;
      step.tokens.assign(s.tokens.begin() + s.computed, s.tokens.begin() + s.computed + p.chunk);
    }
    step.block_table = blocks_.table(step.seq_id);
    plan.batch.seqs.push_back(std::move(step));
    plan.sampling.push_back({p.sample, static_cast<int64_t>(s.request.prompt.size()), s.request.params, s.seed});
    if (p.after_hit) plan.sampling.back().context_prefix.assign(s.tokens.begin(), s.tokens.begin() + s.computed);
  }
  in_flight_.push_back({plan.step_id, planned});
  return plan;
}

FinishReason Scheduler::finish_reason(const Sequence& seq, int32_t token) const {
  const SamplingParams& p = seq.request.params;
  if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end())
    return FinishReason::stop;
  if (!p.ignore_eos && std::find(options_.eos_token_ids.begin(), options_.eos_token_ids.end(), token) !=
                           options_.eos_token_ids.end())
    return FinishReason::stop;
  if (static_cast<int64_t>(seq.output.tokens.size()) >= p.max_tokens) return FinishReason::length;
  if (static_cast<int64_t>(seq.tokens.size()) >= shape_.max_positions) return FinishReason::length;
  return FinishReason::none;
}

void Scheduler::finish(Sequence& seq, FinishReason reason) {
  for (InFlight& step : in_flight_)  // a row planned ahead for it is discarded when its step returns
    for (Planned& p : step.seqs)
      if (p.seq == &seq) p.seq = nullptr;
  blocks_.free(seq.request.id);
  seq.output.finish = reason;
  released_.push_back(seq.request.id);
  finished_[seq.request.id] = std::move(seq.output);
  running_.remove_if([&](const SeqPtr& s) { return s.get() == &seq; });
}

std::vector<TokenEvent> Scheduler::complete(const StepResult& result) {
  LATTICE_CHECK(!in_flight_.empty() && in_flight_.front().step_id == result.step_id, "result for step ",
                result.step_id, " does not match the oldest step in flight");
  const size_t sampled = static_cast<size_t>(std::count_if(in_flight_.front().seqs.begin(), in_flight_.front().seqs.end(),
                                                            [](const Planned& p) { return p.sample; }));
  LATTICE_CHECK(sampled == result.tokens.size(), "step ", result.step_id, " returned ", result.tokens.size(),
                " tokens for ", sampled, " sampled sequences");
  const InFlight step = std::move(in_flight_.front());
  in_flight_.pop_front();
  ++stats_.steps;
  std::vector<TokenEvent> events;
  size_t next_token = 0;
  for (const Planned& p : step.seqs) {
    if (p.seq == nullptr) {  // planned ahead for a sequence that finished in the step before: nothing to keep
      ++stats_.discarded_rows;
      if (p.sample) ++next_token;
      continue;
    }
    Sequence& seq = *p.seq;
    --seq.in_flight;
    seq.computed += p.chunk;
    blocks_.cache_computed(seq.request.id, seq.tokens, seq.computed);
    // The next chunk's first row, at position `computed`, sees from computed + 1 - window on: the blocks wholly
    // before that are never read again (the attention kernels do not follow their table entries).
    if (shape_.sliding_window > 0)
      blocks_.release_before(seq.request.id, seq.computed + 1 - shape_.sliding_window);
    const bool decode = p.chunk == 1 && !seq.output.tokens.empty() && p.sample;
    if (!decode) stats_.prompt_tokens += p.chunk;
    if (p.sample) ++next_token;
    if (seq.cancel_requested) {
      if (p.feed >= 0) ++stats_.discarded_rows;  // planned ahead, its sequence cancelled meanwhile
      events.push_back({seq.request.id, std::nullopt, FinishReason::cancelled});
      finish(seq, FinishReason::cancelled);
      continue;
    }
    if (!p.sample) continue;
    const SampledToken& sampled = result.tokens[next_token - 1];
    if (!sampled.error.empty()) {  // this request alone ends; its blocks are freed, the others go on
      seq.output.error = sampled.error;
      events.push_back({seq.request.id, std::nullopt, FinishReason::error, seq.output.cached_tokens, seq.output.error});
      finish(seq, FinishReason::error);
      continue;
    }
    seq.tokens.push_back(sampled.token);
    seq.output.tokens.push_back(sampled);
    ++stats_.generated_tokens;
    const FinishReason reason = finish_reason(seq, sampled.token);
    events.push_back({seq.request.id, sampled, reason, seq.output.cached_tokens});
    if (reason != FinishReason::none) finish(seq, reason);
  }
  return events;
}

void Scheduler::cancel(int64_t request_id) {
  auto waiting = std::find_if(waiting_.begin(), waiting_.end(), [&](const SeqPtr& s) { return s->request.id == request_id; });
  if (waiting != waiting_.end()) {
    Sequence& seq = **waiting;
    seq.output.finish = FinishReason::cancelled;
    released_.push_back(request_id);  // a preempted sequence may have sampler state
    finished_[request_id] = std::move(seq.output);
    waiting_.erase(waiting);
    pending_events_.push_back({request_id, std::nullopt, FinishReason::cancelled});
    return;
  }
  for (const SeqPtr& s : running_) {
    if (s->request.id != request_id) continue;
    if (s->in_flight) {
      s->cancel_requested = true;  // finished when its step returns
    } else {
      pending_events_.push_back({request_id, std::nullopt, FinishReason::cancelled});
      finish(*s, FinishReason::cancelled);
    }
    return;
  }
}

void Scheduler::flush_pending(const EventFn& on_event) {
  for (const TokenEvent& e : pending_events_)
    if (on_event) on_event(e);
  pending_events_.clear();
}

void Scheduler::submit_ready(StepExecutor& executor, const EventFn& on_event) {
  flush_pending(on_event);
  const int64_t depth = executor.max_in_flight();
  while (static_cast<int64_t>(in_flight_.size()) < depth) {
    // Split the live sequences evenly over the pipeline's micro-batches so every stage has work.
    const int64_t live = static_cast<int64_t>(running_.size() + waiting_.size());
    std::optional<StepPlan> plan = schedule(std::max<int64_t>(1, (live + depth - 1) / depth));
    if (!plan) break;
    executor.submit(*plan);
  }
  // Async scheduling: a pipeline (depth > 1) already keeps its stages busy with micro-batches, and its tokens
  // come back from the last stage, so only a one-deep executor that feeds pending tokens gets a plan ahead.
  if (depth == 1 && executor.feeds_pending_tokens())
    if (std::optional<StepPlan> plan = schedule_ahead()) executor.submit(*plan);
  flush_pending(on_event);  // a sequence may have ended while planning (cache full)
}

void Scheduler::collect(StepExecutor& executor, const EventFn& on_event) {
  for (const TokenEvent& e : complete(executor.collect()))
    if (on_event) on_event(e);
  flush_pending(on_event);
}

std::vector<RequestOutput> Scheduler::take_finished() {
  std::vector<RequestOutput> outputs;
  for (int64_t id : order_) {
    auto it = finished_.find(id);
    if (it != finished_.end()) outputs.push_back(std::move(it->second));
  }
  std::erase_if(order_, [&](int64_t id) { return finished_.count(id) != 0; });
  finished_.clear();
  return outputs;
}

std::optional<RequestInbox::Clock::time_point> Scheduler::oldest_arrival() const {
  std::optional<RequestInbox::Clock::time_point> oldest;
  for (const SeqPtr& w : waiting_) oldest = std::min(oldest.value_or(w->arrived_at), w->arrived_at);
  return oldest;
}

std::vector<RequestOutput> Scheduler::run(StepExecutor& executor, const EventFn& on_event) {
  while (has_work()) {
    submit_ready(executor, on_event);
    if (!in_flight()) {
      LATTICE_CHECK(!has_work(), "scheduler stalled with ", waiting_.size(), " waiting and ", running_.size(),
                    " running sequences");
      break;
    }
    collect(executor, on_event);
  }
  return take_finished();
}

}  // namespace lattice
