// Async scheduling (Scheduler: pure-decode steps planned ahead of the previous step's tokens) changes no token:
// for greedy and seeded requests that end at different steps (EOS, stop tokens, max_tokens), cancelled mid-run,
// preempted for want of blocks, or sharing cached prefixes, runs with it on equal runs with it off. And the rows
// planned ahead for sequences that ended meanwhile write no K/V that another sequence reads: an executor that
// runs each step only when it is collected (as late as a GPU stream may) checks every cache slot a step reads.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <sstream>

#include "tests/engine/scheduler_fixture.h"

namespace lattice {
namespace {

constexpr int32_t kBlockSize = 16;  // SchedulerTest::run's

class AsyncSchedulingTest : public SchedulerTest {
 protected:
  static SchedulerOptions async(SchedulerOptions o = {}) {
    o.async_scheduling = true;
    return o;
  }

  // mixed_requests() that end in every way: EOS (a token request 0 generates third, off for request 1 by
  // ignore_eos), a stop token of request 3's own, max_tokens; some end a step or more before the others.
  static std::vector<Request> ending_requests(const std::vector<RequestOutput>& plain, SchedulerOptions& options) {
    std::vector<Request> rs = mixed_requests();
    options.eos_token_ids = {plain[0].tokens[2].token};
    rs[1].params.ignore_eos = true;
    rs[3].params.stop_token_ids = {plain[3].tokens[1].token};
    rs[6].params.max_tokens = 2;
    return rs;
  }

  static int count_finished(const std::vector<RequestOutput>& outs, FinishReason reason) {
    return static_cast<int>(
        std::count_if(outs.begin(), outs.end(), [&](const RequestOutput& o) { return o.finish == reason; }));
  }
};

TEST_F(AsyncSchedulingTest, SequencesEndingAtDifferentStepsGetTheTokensOfOneStepInFlight) {
  SchedulerOptions base;
  const auto requests = ending_requests(run(mixed_requests(), 256), base);
  for (const int64_t budget : {512, 7}) {  // 7: prefill in chunks beside the decodes
    SCOPED_TRACE(::testing::Message() << "budget " << budget);
    SchedulerOptions options = base;
    options.max_tokens_per_step = budget;
    const auto reference = run(requests, 256, options);
    ASSERT_GE(count_finished(reference, FinishReason::stop), 2) << "the test needs sequences that stop on a token";
    SchedulerStats stats;
    expect_same(run(requests, 256, async(options), &stats), reference, 5e-5);
    EXPECT_GT(stats.ahead_steps, 0);
    if (budget == 512) {  // (with budget 7 they stop while others still prefill: no step is planned ahead then)
      EXPECT_GT(stats.discarded_rows, 0) << "a sequence that stops on a token has a row in the step planned ahead";
    }
  }
}

TEST_F(AsyncSchedulingTest, RunningOutOfBlocksPreemptsAndChangesNothing) {
  const auto requests = mixed_requests();
  const auto reference = run(requests, 256);
  SchedulerStats stats;
  expect_same(run(requests, 7, async(), &stats), reference, 5e-5);
  EXPECT_GT(stats.preemptions, 0);
  EXPECT_GT(stats.ahead_steps, 0);
}

TEST_F(AsyncSchedulingTest, PrefixCachingChangesNothing) {
  const auto requests = shared_prefix_requests();
  const auto reference = run(requests, 512);
  for (const int32_t blocks : {512, 13}) {
    SCOPED_TRACE(::testing::Message() << blocks << " blocks");
    SchedulerStats stats;
    expect_same(run(requests, blocks, async(caching()), &stats), reference, 5e-5);
    EXPECT_GT(stats.prefix_cache_hits, 0);
    EXPECT_GT(stats.ahead_steps, 0);
  }
}

// Runs `requests` and, as each of `cancels` (request, after its n-th token -> request to cancel) fires, cancels
// the other one, as a client that goes away (or a stop string matched by a server) does between steps.
std::vector<RequestOutput> run_with_cancels(LlamaModel& model, const std::vector<Request>& requests,
                                            const std::map<int64_t, std::pair<size_t, int64_t>>& cancels,
                                            SchedulerOptions options, SchedulerStats* stats) {
  KvCache cache(model.lm_shape().kv, 256);
  Scheduler scheduler(model.lm_shape(), 256, kBlockSize, options);
  for (const Request& r : requests) scheduler.add(r);
  LocalExecutor executor(model, cache);
  std::map<int64_t, size_t> generated;
  auto out = scheduler.run(executor, [&](const TokenEvent& e) {
    if (!e.token) return;
    const auto it = cancels.find(e.request_id);
    if (it != cancels.end() && ++generated[e.request_id] == it->second.first) scheduler.cancel(it->second.second);
  });
  *stats = scheduler.stats();
  return out;
}

TEST_F(AsyncSchedulingTest, CancellingMidRunGivesTheSameTokens) {
  auto requests = mixed_requests();
  for (Request& r : requests) r.params.max_tokens = 12;
  // Request 0's third token cancels request 5, request 2's fifth cancels request 7, request 4's second cancels
  // itself (a stop string seen in its own text).
  const std::map<int64_t, std::pair<size_t, int64_t>> cancels = {{0, {3, 5}}, {2, {5, 7}}, {4, {2, 4}}};
  SchedulerStats off_stats, on_stats;
  const auto reference = run_with_cancels(*model_, requests, cancels, {}, &off_stats);
  ASSERT_EQ(count_finished(reference, FinishReason::cancelled), 3);
  expect_same(run_with_cancels(*model_, requests, cancels, async(), &on_stats), reference, 5e-5);
  EXPECT_GT(on_stats.ahead_steps, 0);
  EXPECT_GT(on_stats.discarded_rows, 0) << "a sequence cancelled while a step is planned ahead has a row in it";
}

// Runs each plan when it is collected, not when it is submitted: the latest a GPU stream may run it, after the
// scheduler has already planned the next step and freed the blocks of sequences that ended. Before each step it
// checks that every cache slot the step reads (positions before a row's start) holds the K/V written for that
// position and token of the reading sequence's own tokens (or the same position and token from another sequence,
// as a prefix-cache hit shares them); a row that wrote into a block another sequence reads before writing it
// itself would break that.
struct KvAudit {
  struct Write {
    int64_t seq, position, slot;
  };
  int64_t slots_read = 0;       // cache slots the steps read
  std::vector<Write> writes;    // every K/V write, in execution order
  std::string first_violation;  // empty when every read found what it should
};

class DeferredAuditExecutor final : public StepExecutor {
 public:
  DeferredAuditExecutor(CausalLM& model, KvCache& cache) : local_(model, cache) {}
  int max_in_flight() const override { return 1; }
  bool feeds_pending_tokens() const override { return true; }
  void submit(const StepPlan& plan) override { queued_.push_back(plan); }
  StepResult collect() override {
    StepPlan plan = std::move(queued_.front());
    queued_.pop_front();
    feed_pending_tokens(plan, last_);
    for (size_t i = 0; i < plan.batch.seqs.size(); ++i) audit(plan.batch.seqs[i], plan.sampling[i]);
    local_.submit(plan);
    last_ = local_.collect();
    return last_;
  }

  const KvAudit& audit() const { return audit_; }

 private:
  struct Written {
    int64_t seq, position;
    int32_t token;
  };

  void audit(const SequenceStep& s, const SequenceSampling& sampling) {
    std::vector<int32_t>& history = history_[s.seq_id];
    if (!sampling.context_prefix.empty()) history = sampling.context_prefix;
    history.resize(static_cast<size_t>(s.start_pos));
    history.insert(history.end(), s.tokens.begin(), s.tokens.end());
    const auto slot = [&](int64_t pos) {
      return int64_t{s.block_table[static_cast<size_t>(pos / kBlockSize)]} * kBlockSize + pos % kBlockSize;
    };
    for (int64_t pos = 0; pos < s.start_pos; ++pos) {
      ++audit_.slots_read;
      const int32_t token = history[static_cast<size_t>(pos)];
      const auto it = written_.find(slot(pos));
      const bool ok = it != written_.end() && it->second.position == pos && it->second.token == token;
      if (!ok && audit_.first_violation.empty()) {
        std::ostringstream m;
        m << "sequence " << s.seq_id << " reads position " << pos << " (token " << token << ") from slot " << slot(pos)
          << ", which holds ";
        if (it == written_.end())
          m << "nothing";
        else
          m << "sequence " << it->second.seq << "'s position " << it->second.position << " (token "
            << it->second.token << ")";
        audit_.first_violation = m.str();
      }
    }
    for (int64_t pos = s.start_pos; pos < s.context_len(); ++pos) {
      written_[slot(pos)] = {s.seq_id, pos, history[static_cast<size_t>(pos)]};
      audit_.writes.push_back({s.seq_id, pos, slot(pos)});
    }
  }

  LocalExecutor local_;
  std::deque<StepPlan> queued_;
  StepResult last_;
  KvAudit audit_;
  std::map<int64_t, Written> written_;                 // by cache slot
  std::map<int64_t, std::vector<int32_t>> history_;   // by sequence: its tokens by position
};

TEST_F(AsyncSchedulingTest, RowsOfEndedSequencesWriteNoKvAnotherSequenceReads) {
  // Sequences stop on EOS at different steps; each that ends brings a new request continuing its text (a prefix
  // hit on its blocks, its last partial block the one its discarded row wrote), so freed blocks are taken again
  // at once, in a cache of 18 blocks.
  SchedulerOptions options;
  const auto plain = run(mixed_requests(), 256);
  auto requests = ending_requests(plain, options);
  for (size_t i = 0; i < requests.size(); ++i)  // every request stops on a token of its own, at different steps
    requests[i].params.stop_token_ids.push_back(plain[i].tokens[1 + i % 4].token);
  // Through a LocalExecutor, or (with `audit`) the deferred auditing one.
  const auto drive = [&](SchedulerOptions o, KvAudit* audit, SchedulerStats* stats) {
    constexpr int32_t blocks = 18;
    KvCache cache(model_->lm_shape().kv, blocks);
    Scheduler scheduler(model_->lm_shape(), blocks, kBlockSize, caching(o));
    for (const Request& r : requests) scheduler.add(r);
    LocalExecutor local(*model_, cache);
    DeferredAuditExecutor deferred(*model_, cache);
    StepExecutor& executor = audit ? static_cast<StepExecutor&>(deferred) : local;
    std::map<int64_t, std::vector<int32_t>> text;
    int64_t next_id = 1000;
    auto out = scheduler.run(executor, [&](const TokenEvent& e) {
      if (e.token) text[e.request_id].push_back(e.token->token);
      if (e.finish == FinishReason::none || e.request_id >= 1000) return;
      Request r;
      r.id = next_id++;
      r.prompt = requests[static_cast<size_t>(e.request_id)].prompt;
      r.prompt.insert(r.prompt.end(), text[e.request_id].begin(), text[e.request_id].end());
      r.params.max_tokens = 5;
      r.params.temperature = 0;
      scheduler.add(r);
    });
    if (audit) *audit = deferred.audit();
    *stats = scheduler.stats();
    expect_all_returned(scheduler.blocks());
    return out;
  };
  SchedulerStats off_stats, on_stats;
  const auto reference = drive(options, nullptr, &off_stats);
  KvAudit audit;
  const auto outputs = drive(async(options), &audit, &on_stats);
  expect_same(outputs, reference, 5e-5);
  EXPECT_EQ(audit.first_violation, "");
  EXPECT_GT(audit.slots_read, 0);
  EXPECT_GT(on_stats.discarded_rows, 0);
  // A discarded row feeds a finished sequence's last token, at the position no step computes otherwise
  // (prompt + generated - 1). For the check to mean something, some slot such a row wrote must be written
  // (then read) by another sequence afterwards.
  std::map<int64_t, int64_t> last_position;
  for (const RequestOutput& o : outputs)
    last_position[o.id] = o.prompt_tokens + static_cast<int64_t>(o.tokens.size()) - 1;
  int64_t discarded_then_reused = 0;
  for (size_t i = 0; i < audit.writes.size(); ++i) {
    const KvAudit::Write& w = audit.writes[i];
    if (w.position != last_position.at(w.seq)) continue;
    discarded_then_reused += std::any_of(audit.writes.begin() + static_cast<std::ptrdiff_t>(i) + 1, audit.writes.end(),
                                         [&](const KvAudit::Write& later) {
                                           return later.slot == w.slot && later.seq != w.seq;
                                         });
  }
  EXPECT_GT(discarded_then_reused, 0) << "no slot a discarded row wrote was taken by another sequence";
  EXPECT_GT(on_stats.prefix_cache_hits, 0);
}

}  // namespace
}  // namespace lattice
