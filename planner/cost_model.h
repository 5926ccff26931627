// The per-step cost model (docs/plan.md): every op a Llama step runs on one rank's shard (models/llama.cc: fused
// qkv and gate_up GEMMs, rope + KV write, paged attention, norms, SiLU-mul, the row-parallel all-reduces), each
// costing max(bytes / achieved bandwidth, flops / achieved FLOP/s) + launch overhead; collectives as rings.
// Nothing overlaps: the engine runs ops and collectives one after another on one stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/model_config.h"
#include "planner/hardware_profile.h"

namespace lattice::planner {

// Where the time of a step goes; the largest term names the bottleneck.
enum class Term { weights, kv, compute, activations, launch, all_reduce, pipeline };
constexpr int kNumTerms = 7;
const char* term_name(Term term);

struct Breakdown {
  double seconds[kNumTerms] = {};
  double& operator[](Term t) { return seconds[static_cast<int>(t)]; }
  double operator[](Term t) const { return seconds[static_cast<int>(t)]; }
  double total() const;
  Term largest() const;
  void add(const Breakdown& other, double times = 1);
};

struct OpCost {
  std::string name;
  OpKind kind;
  double weight_bytes = 0;  // bytes of weights read
  double kv_bytes = 0;      // bytes of the KV cache read
  double other_bytes = 0;   // activations read and written, KV written
  double flops = 0;
  int64_t launches = 1;     // times the op runs in the step (e.g. once per layer); the byte and flop
                            // counts above are the sum over them
  double seconds = 0;       // max(bytes / bw, flops / FLOP/s) + launches x launch overhead
  Breakdown breakdown;      // `seconds` split over the terms
};

// Costs one op on `hw` (fills seconds and breakdown).
OpCost cost_op(OpCost op, const HardwareProfile& hw);

// Ring all-reduce of `bytes` over `ranks`: 2 (n-1)/n x bytes / bus bandwidth + 2 (n-1) hop latencies.
double ring_all_reduce_seconds(double bytes, int ranks, const Link& link);
// Gather of `bytes` from each of `ranks` to one: (n-1) x bytes / bus bandwidth + (n-1) hop latencies.
double gather_seconds(double bytes, int ranks, const Link& link);
// Point-to-point send of `bytes`: bytes / bandwidth + one hop latency.
double send_seconds(double bytes, const Link& link);

// One sequence of a step: `new_tokens` new tokens after `cached` positions already in the cache.
struct SeqShape {
  int64_t new_tokens = 1;
  int64_t cached = 0;
};

// A step as one pipeline stage of one TP rank runs it.
struct StageStep {
  int tp = 1;
  int64_t layers = 0;          // layers this stage holds
  bool first = true, last = true;
  std::vector<SeqShape> seqs;  // every sequence in the step (all decode or all prefill; mixed works too)
  int64_t dtype_bytes = 2;
};

struct StageCost {
  std::vector<OpCost> ops;  // one entry per op of the step, in run order, with its repeat count folded in
  Breakdown breakdown;
  double seconds() const { return breakdown.total(); }
};

// The ops of one stage's step and their costs; all-reduces run over `tp_link`.
StageCost stage_step_cost(const ModelConfig& config, const StageStep& step, const HardwareProfile& hw,
                          const Link& tp_link);

}  // namespace lattice::planner
