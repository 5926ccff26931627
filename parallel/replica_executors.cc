#include "parallel/replica_executors.h"

#include "parallel/plan_codec.h"

namespace lattice::parallel {

RemoteReplicaExecutor::RemoteReplicaExecutor(ParallelContext& ctx, int replica) : ctx_(ctx), replica_(replica) {
  LATTICE_CHECK(ctx.topo.is_coordinator() && replica > 0 && replica < ctx.topo.dp, "replica ", replica,
                " is not a remote replica of rank 0 (dp ", ctx.topo.dp, ")");
}

void RemoteReplicaExecutor::submit(const StepPlan& plan) {
  ctx_.control->post(encode_plan(plan), ctx_.topo.leader_rank(replica_), kPlanTag);
}

StepResult RemoteReplicaExecutor::collect() {
  return decode_result(ctx_.control->recv(ctx_.topo.sampler_rank(replica_), kResultTag));
}

bool RemoteReplicaExecutor::result_ready() { return ctx_.control->probe(ctx_.topo.sampler_rank(replica_), kResultTag); }

void RemoteReplicaExecutor::shutdown() { ctx_.control->post(encode_shutdown(), ctx_.topo.leader_rank(replica_), kPlanTag); }

ReplicaExecutors::ReplicaExecutors(StageRunner& runner) : local_(runner) {
  for (int r = 1; r < runner.context().topo.dp; ++r)
    remote_.push_back(std::make_unique<RemoteReplicaExecutor>(runner.context(), r));
}

std::vector<StepExecutor*> ReplicaExecutors::executors() {
  std::vector<StepExecutor*> out = {&local_};
  for (auto& r : remote_) out.push_back(r.get());
  return out;
}

void ReplicaExecutors::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& r : remote_) r->shutdown();
  local_.shutdown();
}

}  // namespace lattice::parallel
