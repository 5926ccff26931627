// Single-process continuous batching. Each step it schedules running sequences first (decode tokens and
// the next chunk of unfinished prefills), then admits waiting requests while the per-step token budget and
// free KV blocks allow; long prompts are prefilled in chunks. When a running sequence needs a KV block and
// none is free, the most recently admitted sequence is preempted (blocks freed, recomputed later), so
// running out of blocks makes requests wait instead of failing. The rank-0 coordinator generalises this.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include "engine/causal_lm.h"
#include "engine/kv_cache/block_manager.h"
#include "engine/scheduler/request.h"

namespace lattice {

struct SchedulerOptions {
  int64_t max_tokens_per_step = 512;  // prefill chunk + decode tokens per step
  int64_t max_seqs = 256;             // sequences per step
  std::vector<int32_t> eos_token_ids; // end a request (finish reason "stop") unless it sets ignore_eos
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;     // prefill tokens computed (recomputation after preemption included)
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
};

class Scheduler {
 public:
  Scheduler(CausalLM& model, KvCache& cache, SchedulerOptions options = {});

  // Validates and queues a request; throws (naming the problem) on an empty prompt, a token id out of range,
  // a prompt that leaves no room within the model's positions or the KV cache, or bad sampling parameters.
  void add(Request request);
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }

  // Runs one engine step; returns the tokens it produced.
  std::vector<TokenEvent> step();
  // Steps until every queued request has finished; returns outputs in the order requests were added.
  std::vector<RequestOutput> run(const std::function<void(const TokenEvent&)>& on_token = {});

  const SchedulerStats& stats() const { return stats_; }
  const BlockManager& blocks() const { return blocks_; }

 private:
  struct Sequence {
    Request request;
    std::vector<int32_t> tokens;  // prompt then generated
    int64_t computed = 0;         // tokens whose K/V are in the cache
    std::unique_ptr<SequenceSampler> sampler;
    RequestOutput output;
  };
  using SeqList = std::list<std::unique_ptr<Sequence>>;

  struct Planned {
    Sequence* seq;
    int64_t chunk;
  };
  std::vector<Planned> plan();
  enum class Room { ok, preempted_self, cache_full };
  Room make_room(Sequence& seq, int64_t tokens, std::vector<Planned>& planned);
  void preempt(SeqList::iterator it);
  void finish(Sequence& seq, FinishReason reason);
  FinishReason finish_reason(const Sequence& seq, int32_t token) const;

  CausalLM& model_;
  KvCache& cache_;
  SchedulerOptions options_;
  BlockManager blocks_;
  SeqList waiting_;
  SeqList running_;  // in admission order
  std::map<int64_t, RequestOutput> finished_;
  std::vector<int64_t> order_;  // request ids as added
  SchedulerStats stats_;
};

}  // namespace lattice
