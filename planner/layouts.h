// Candidate TP x PP x DP layouts of a model on a number of devices, each evaluated by the cost model
// (planner/cost_model.h) and the memory plan (planner/memory_plan.h), and the one to recommend for an objective.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planner/cost_model.h"
#include "planner/memory_plan.h"

namespace lattice::planner {

struct PlanRequest {
  int gpus = 1;
  int64_t isl = 128, osl = 128;
  std::optional<int64_t> batch;       // sequences per replica; unset: the most the KV cache and the SLO allow
  std::optional<double> rate;         // requests/s over all replicas: the smallest batch that sustains it
  std::optional<double> latency_slo_ms;  // bound on the time per output token
  std::string objective = "throughput";  // or "latency"
  std::string intra_node_link, inter_node_link;
  MemoryOptions memory;
};

struct LayoutResult {
  int tp = 1, pp = 1, dp = 1;
  int64_t batch = 0;  // sequences per replica
  RankMemory memory;  // the rank with the most memory in use
  int64_t kv_tokens = 0;  // per replica: the smallest stage's cache (the engine takes the minimum over ranks)
  bool fits = false;
  std::string note;   // why it does not fit, or what it misses (SLO, rate)
  double decode_step_s = 0;   // one decode step of the whole batch: the time per output token
  double prefill_s = 0;       // one prompt of isl tokens alone: the time to the first token
  double prefill_batch_s = 0; // the batch's prompts, packed into steps of up to max_tokens_per_step, pipelined
  double output_tokens_per_s = 0;  // all replicas, prefill included
  Breakdown decode;           // decode step time by term
  Term bottleneck = Term::weights;
};

// Time of one decode step (all of `batch` sequences get a token) on a tp x pp replica, by term; `context` is
// the positions each sequence has before the step.
Breakdown decode_step(const ModelConfig& config, const HardwareProfile& hw, int tp, int pp, int64_t batch,
                      int64_t context, const PlanRequest& request);
// Time for one prompt of `isl` tokens to go through the replica (chunked at max_tokens_per_step).
double prefill_latency(const ModelConfig& config, const HardwareProfile& hw, int tp, int pp, int64_t isl,
                       const PlanRequest& request);

// Evaluates one layout (the batch chosen as PlanRequest says).
LayoutResult evaluate_layout(const ModelConfig& config, const HardwareProfile& hw, int tp, int pp,
                             const PlanRequest& request);
// Every tp x pp (powers of two the model's shapes allow) with dp = gpus / (tp pp) replicas.
std::vector<LayoutResult> plan_layouts(const ModelConfig& config, const HardwareProfile& hw, const PlanRequest& request);
// Index of the layout to use for request.objective among those that fit and meet the SLO/rate; -1 if none.
int recommend(const std::vector<LayoutResult>& layouts, const std::string& objective);

nlohmann::ordered_json layout_json(const LayoutResult& layout);

}  // namespace lattice::planner
