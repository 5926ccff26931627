#include "engine/scheduler/step_plan.h"

#include "engine/core/error.h"

namespace lattice {

void feed_pending_tokens(StepPlan& plan, const StepResult& previous) {
  if (plan.pending.empty()) return;
  LATTICE_CHECK(previous.step_id + 1 == plan.step_id, "step ", plan.step_id, " was planned ahead of step ",
                plan.step_id - 1, " but is fed from step ", previous.step_id);
  for (const PendingToken& p : plan.pending) {
    LATTICE_CHECK(p.seq < plan.batch.seqs.size() && plan.batch.seqs[p.seq].tokens.size() == 1 &&
                      p.result_index < previous.tokens.size(),
                  "step ", plan.step_id, ": pending token of row ", p.seq, " from result ", p.result_index,
                  " is outside a plan of ", plan.batch.seqs.size(), " rows and a result of ", previous.tokens.size(),
                  " tokens");
    const SampledToken& sampled = previous.tokens[p.result_index];
    plan.batch.seqs[p.seq].tokens[0] = sampled.error.empty() ? sampled.token : 0;
  }
  plan.pending.clear();
}

}  // namespace lattice
