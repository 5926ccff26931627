// One rank's share of a TP x PP grid in the MPI tests (tests/parallel): the model's layers and vocabulary shard
// (and a MoE model's experts, sliced or whole) for this rank, a KV cache of 64 blocks on every rank, and the stage runner; run_prompt runs one prompt with
// logits at every position through it. greedy_tokens runs prompts to completion through any executor.
#pragma once

#include <numeric>
#include <optional>
#include <string>

#include "engine/scheduler/scheduler.h"
#include "models/llama.h"
#include "parallel/pipeline_executor.h"
#include "parallel/plan_codec.h"
#include "parallel/sharding.h"
#include "parallel/stage_runner.h"
#include "tests/models/run_step.h"

namespace lattice::testing {

// Logits at every position of `prompt` from a model on one rank (the reference a grid must reproduce).
inline Tensor one_rank_logits(LlamaModel& whole, const std::vector<int32_t>& prompt) {
  KvCache cache(whole.lm_shape().kv, 64);
  std::vector<int32_t> table(64);
  std::iota(table.begin(), table.end(), 0);
  StepBatch b;
  b.seqs.push_back({0, prompt, 0, table, true});
  return forward(whole, cache, b).logits;
}

struct GridRank {
  parallel::ParallelContext ctx;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<ModelRunner> model_runner;
  std::unique_ptr<parallel::StageRunner> runner;

  // expert_parallel: a MoE model's experts split whole over the TP group (ModelPartition::expert_parallel).
  GridRank(parallel::MpiRuntime& mpi, const std::string& model_dir, int64_t num_layers, int tp, int pp,
           bool expert_parallel = false) {
    ctx = parallel::make_parallel_context(mpi, tp, pp, 1, nullptr);
    const auto bounds = parallel::pipeline_layer_bounds(num_layers, ctx.topo.pp, {});
    ModelPartition part;
    part.tp = {ctx.topo.tp_rank, ctx.topo.tp};
    part.layer_begin = bounds[ctx.topo.pp_rank];
    part.layer_end = bounds[ctx.topo.pp_rank + 1];
    part.expert_parallel = expert_parallel;
    model = LlamaModel::load(model_dir, part, ctx.tp.get());
    cache = std::make_unique<KvCache>(model->lm_shape().kv, 64);
    model_runner = std::make_unique<ModelRunner>(*model, *cache, ops::ExecContext::cpu(), RunnerLimits{});
    runner = std::make_unique<parallel::StageRunner>(ctx, *model_runner);
  }

  // The plan of one prompt with logits at every position: made on rank 0 and passed down the pipeline. The
  // logits come back on the sampler rank only.
  std::optional<StepOutput> run_prompt(const std::vector<int32_t>& prompt) {
    std::string wire;
    StepPlan plan;
    if (ctx.topo.is_coordinator()) {
      std::vector<int32_t> table(64);
      std::iota(table.begin(), table.end(), 0);
      plan.batch.seqs.push_back({0, prompt, 0, table, true});
      plan.sampling.push_back({});
      wire = parallel::encode_plan(plan);
      ctx.control->broadcast_tp(wire, 0);
    } else {
      wire = runner->receive_plan();
      plan = parallel::decode_plan(wire).plan;
    }
    return runner->forward(plan, wire);
  }
};

// The greedy continuations (max_tokens each) of `prompts` through `executor` (64 blocks of 16 tokens), with
// `options` (EOS ids, async scheduling); the scheduler's stats go to `stats` when given.
inline std::vector<std::vector<int32_t>> greedy_tokens(const LmShape& shape, StepExecutor& executor,
                                                       const std::vector<std::vector<int32_t>>& prompts,
                                                       int max_tokens, const SchedulerOptions& options = {},
                                                       SchedulerStats* stats = nullptr) {
  Scheduler scheduler(shape, 64, 16, options);
  for (size_t c = 0; c < prompts.size(); ++c) {
    Request r;
    r.id = static_cast<int64_t>(c);
    r.prompt = prompts[c];
    r.params.temperature = 0;
    r.params.max_tokens = max_tokens;
    scheduler.add(r);
  }
  std::vector<std::vector<int32_t>> out;
  for (const RequestOutput& o : scheduler.run(executor)) {
    out.emplace_back();
    for (const auto& t : o.tokens) out.back().push_back(t.token);
  }
  if (stats) *stats = scheduler.stats();
  return out;
}

// On the coordinator: greedy_tokens through the grid's pipeline, whose workers it then shuts down; on any other
// rank: the worker loop until that shutdown, and nullopt.
inline std::optional<std::vector<std::vector<int32_t>>> grid_greedy_tokens(
    GridRank& g, const std::vector<std::vector<int32_t>>& prompts, int max_tokens, const SchedulerOptions& options = {},
    SchedulerStats* stats = nullptr) {
  if (!g.ctx.topo.is_coordinator()) {
    parallel::run_worker(*g.runner, {});
    return std::nullopt;
  }
  parallel::PipelineExecutor executor(*g.runner);
  auto out = greedy_tokens(g.model->lm_shape(), executor, prompts, max_tokens, options, stats);
  executor.shutdown();
  return out;
}

}  // namespace lattice::testing
