// Continuous batching. Each plan takes the running sequences first (decode tokens and the next chunk of
// unfinished prefills), then admits waiting requests, highest priority first, while the per-step token
// budget and free KV blocks allow; long prompts are prefilled in chunks. When a sequence needs a KV block
// and none is free, the lowest-priority (then most recently admitted) sequence that is not in flight is
// preempted: its blocks are freed and it is recomputed later, so running out of blocks makes requests wait
// and never fails them. With prefix caching, an admitted sequence first takes the cached blocks of its
// longest cached prefix (at most all but its last token, which must run to give logits) and computes only the
// rest; its full blocks join the cache as their steps complete. A sequence whose next block another one is
// computing right now (n choices of one prompt, requests sharing a system prompt arriving together) waits
// for that step and then shares the block, instead of computing it again. Plans go to a StepExecutor; with a pipeline
// several are in flight at once, over disjoint sets of sequences. The same scheduler runs in one process and
// on the rank-0 coordinator (one per data-parallel replica); the prefix-cache hits it decides reach the ranks
// as ordinary block tables.
//
// Async scheduling (SchedulerOptions::async_scheduling, with an executor that feeds pending tokens): while a step
// is in flight and every running sequence samples in it, the next step is planned ahead from that step alone
// (each sequence advances one position, its block grown; the token is the one the step in flight samples) and
// submitted before the first is collected, so the host prepares step n + 1 while the device runs step n. Only
// finishing on a stop token, EOS or an error depends on the tokens: such a sequence has one row in the step
// planned ahead, discarded when that step is collected. Its blocks are freed when step n is collected and may go
// to another sequence in step n + 2; executors run steps in submission order (one stream), so the discarded
// row's K/V write lands before the new owner writes that slot, and a freed block the row writes is never a full
// block another sequence could take from the prefix cache (the row's position is past its last full block).
// A step with prefill (waiting requests, prefill chunks) is not planned ahead: it waits for the tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "engine/causal_lm.h"
#include "engine/kv_cache/block_manager.h"
#include "engine/scheduler/executor.h"
#include "engine/scheduler/request.h"
#include "engine/scheduler/request_inbox.h"
#include "engine/scheduler/step_plan.h"

namespace lattice {

struct SchedulerOptions {
  int64_t max_tokens_per_step = 512;   // prefill chunk + decode tokens per step
  int64_t max_seqs = 256;              // sequences per step
  std::vector<int32_t> eos_token_ids;  // end a request (finish reason "stop") unless it sets ignore_eos
  int32_t max_top_k = 0;               // > 0: refuse larger top_k short of the vocabulary (GPU sampling)
  PrefixCaching prefix_caching;        // reuse the cached K/V of a sequence's longest cached prefix
  bool async_scheduling = false;       // plan pure-decode steps ahead of the tokens (see above)
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;     // prefill tokens computed (recomputation after preemption included)
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  int64_t prefix_cache_queries = 0;  // tokens of admitted sequences looked up in the prefix cache
  int64_t prefix_cache_hits = 0;     // of those, tokens whose K/V came from the cache (not computed)
  int64_t ahead_steps = 0;           // steps planned ahead of the previous step's tokens (async scheduling)
  int64_t discarded_rows = 0;        // their rows of sequences that had finished meanwhile
};

class Scheduler {
 public:
  // `shape` gives the vocabulary and position limits; the KV cache has num_blocks blocks of block_size.
  Scheduler(const LmShape& shape, int32_t num_blocks, int32_t block_size, SchedulerOptions options = {});

  // Validates and queues a request; throws (naming the problem) on an empty prompt, a token id out of range,
  // a prompt that leaves no room within the model's positions or the KV cache, or bad sampling parameters.
  void add(Request request);
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }

  // Plans a step over the sequences not already in flight, at most `max_seqs` of them; nullopt when none
  // can run now.
  std::optional<StepPlan> schedule(int64_t max_seqs);
  // With async scheduling: the pure-decode step after the one step in flight, planned before its tokens are
  // known; nullopt when that is not safe or not useful (see the class comment).
  std::optional<StepPlan> schedule_ahead();
  // Applies the oldest in-flight plan's result; returns its tokens as events (and finishes requests). A token
  // with an error ends its request with FinishReason::error (its KV blocks freed); the others are unaffected.
  std::vector<TokenEvent> complete(const StepResult& result);

  // Ends a request: a waiting one leaves the queue, a running one leaves the batch and frees its KV blocks
  // now (or when its step in flight returns). Emits a cancelled event. Unknown or finished ids are ignored.
  void cancel(int64_t request_id);

  using EventFn = std::function<void(const TokenEvent&)>;
  // Drives `executor` until every queued request has finished, keeping up to executor.max_in_flight()
  // plans in flight. Returns outputs in the order requests were added. (A server drives its schedulers,
  // one per replica, through a ReplicaCoordinator, engine/scheduler/replica_coordinator.h.)
  std::vector<RequestOutput> run(StepExecutor& executor, const EventFn& on_event = {});

  // The two halves of a step of run(), for a coordinator that drives several schedulers at once:
  // submits plans until the executor holds max_in_flight() of them (reporting ends found meanwhile: cancelled,
  // cache full) and, with async scheduling, one more planned ahead; then, once a plan is in flight, applies the
  // oldest one's result (waiting for it).
  void submit_ready(StepExecutor& executor, const EventFn& on_event);
  bool in_flight() const { return !in_flight_.empty(); }
  void collect(StepExecutor& executor, const EventFn& on_event);
  // The outputs of the requests finished so far, in the order they were added; forgets them.
  std::vector<RequestOutput> take_finished();
  // When the longest-waiting request arrived (nullopt when none waits): the batching window's start.
  std::optional<RequestInbox::Clock::time_point> oldest_arrival() const;

  const SchedulerStats& stats() const { return stats_; }
  const BlockManager& blocks() const { return blocks_; }
  // For a server's metrics (read on the thread that drives the scheduler).
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }

 private:
  struct Sequence {
    Request request;
    uint64_t seed = 0;
    int64_t arrival = 0;
    std::vector<int32_t> tokens;  // prompt then generated
    int64_t computed = 0;         // tokens whose K/V are in the cache
    bool admitted = false;        // admitted at least once (output.cached_tokens is set)
    int32_t in_flight = 0;  // steps in flight with a row of this sequence (two when one was planned ahead)
    bool cancel_requested = false;
    RequestInbox::Clock::time_point arrived_at;
    RequestOutput output;
  };
  using SeqPtr = std::unique_ptr<Sequence>;
  struct Planned {
    Sequence* seq;
    int64_t chunk;
    bool sample;
    bool after_hit = false;  // the sequence's first chunk after a prefix-cache hit
    std::vector<uint64_t> fills = {};  // with prefix caching: chain hashes of the blocks this chunk completes
    int32_t feed = -1;  // >= 0: planned ahead; its token is the previous step's result.tokens[feed]
  };
  struct InFlight {
    uint64_t step_id;
    std::vector<Planned> seqs;
  };

  // Grows seq's blocks to hold `tokens`, preempting sequences not in flight (those below `below_priority`
  // when set, else any, seq included), cheapest first, but only when that frees enough.
  bool make_room(Sequence& seq, int64_t tokens, std::optional<int32_t> below_priority, std::vector<Planned>& planned,
                 int64_t& budget);
  // Preemption candidates: not in flight, lowest priority first, then most recently admitted.
  std::vector<Sequence*> victims(std::optional<int32_t> below_priority) const;
  void preempt(Sequence* seq, std::vector<Planned>& planned, int64_t& budget);
  // A planned chunk of `chunk` tokens from seq.computed (the blocks it completes recorded for followers).
  Planned plan_chunk(Sequence& seq, int64_t chunk, bool after_hit) const;
  // Whether the block after seq's prefix-cache hit of `hit` tokens is being computed by a chunk planned in
  // this step or in flight: then seq waits for it rather than computing the same K/V again.
  bool follows_pending(const Sequence& seq, int64_t hit, const std::vector<Planned>& planned) const;
  void enqueue_waiting(SeqPtr seq);
  void finish(Sequence& seq, FinishReason reason);
  FinishReason finish_reason(const Sequence& seq, int32_t token) const;
  StepPlan make_plan(const std::vector<Planned>& planned);
  void flush_pending(const EventFn& on_event);

  LmShape shape_;
  SchedulerOptions options_;
  BlockManager blocks_;
  std::list<SeqPtr> waiting_;  // by priority (highest first), then arrival
  std::list<SeqPtr> running_;  // in admission order
  std::deque<InFlight> in_flight_;
  std::vector<TokenEvent> pending_events_;  // token-less ends (cancelled, cache full) not yet reported
  std::vector<int64_t> released_;  // finished since the last plan
  std::map<int64_t, RequestOutput> finished_;
  std::vector<int64_t> order_;  // request ids as added
  SchedulerStats stats_;
  int64_t arrivals_ = 0;
  uint64_t next_step_ = 0;
};

}  // namespace lattice
