#include "engine/scheduler/executor.h"

#include <algorithm>

#include "engine/core/error.h"
#include "engine/ops/op_profile.h"

namespace lattice {

namespace {

ops::StepPhase step_phase(const StepBatch& batch) {
  const bool chunk = std::any_of(batch.seqs.begin(), batch.seqs.end(),
                                 [](const SequenceStep& s) { return s.tokens.size() > 1; });
  return chunk ? ops::StepPhase::prefill : ops::StepPhase::decode;
}

// Whether a fed row's draw reads its context, which the sampler packs on the host.
bool fed_rows_read_context(const StepPlan& plan) {
  return std::any_of(plan.pending.begin(), plan.pending.end(),
                     [&](const PendingToken& p) { return plan.sampling[p.seq].params.has_penalties(); });
}

}  // namespace

LocalExecutor::LocalExecutor(ModelRunner& runner) : runner_(runner), sampler_(runner.gpu()) {}

LocalExecutor::LocalExecutor(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits)
    : owned_(std::make_unique<ModelRunner>(model, cache, exec, limits)), runner_(*owned_), sampler_(runner_.gpu()) {}

void LocalExecutor::sample(const StepPlan& plan, const StepOutput& out, int64_t vocab) {
  ops::OpScope time(runner_.exec(), ops::OpKind::sampling);
  sampler_.enqueue(plan, out, vocab);
}

void LocalExecutor::submit(const StepPlan& plan) {
  const int64_t vocab = runner_.model().lm_shape().vocab_size;
  if (runner_.exec().profiler) profiled_phases_.push_back(step_phase(plan.batch));
  if (!plan.pending.empty()) {
    if (const int32_t* tokens = sampler_.newest_device_tokens(); tokens && !fed_rows_read_context(plan)) {
      DeviceTokenFeed feed{tokens, {}};
      std::vector<int32_t> first_row(plan.batch.seqs.size(), 0);  // each sequence's first token row
      for (size_t i = 1; i < first_row.size(); ++i)
        first_row[i] = first_row[i - 1] + static_cast<int32_t>(plan.batch.seqs[i - 1].tokens.size());
      for (const PendingToken& p : plan.pending)
        feed.rows.push_back({first_row.at(p.seq), static_cast<int32_t>(p.result_index)});
      sample(plan, runner_.forward(plan.batch, &feed), vocab);
      ++device_fed_steps_;
      return;
    }
    // On the CPU the step before was sampled at its submission; on a GPU this waits for its tokens.
    StepPlan fed = plan;
    feed_pending_tokens(fed, sampler_.newest_result());
    sample(fed, runner_.forward(fed.batch), vocab);
    return;
  }
  sample(plan, runner_.forward(plan.batch), vocab);
}

StepResult LocalExecutor::collect() {
  StepResult result = sampler_.collect();
  if (ops::OpProfiler* profiler = runner_.exec().profiler; profiler && !profiled_phases_.empty()) {
    profiler->step_done(profiled_phases_.front());  // its ops' events have completed: its tokens are here
    profiled_phases_.pop_front();
  }
  return result;
}

}  // namespace lattice
