// One scheduled engine step as the coordinator hands it to an executor (run locally, or serialised to every
// rank of a tp x pp grid), and the tokens that come back.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sampler/sampler.h"
#include "engine/sampler/sampling_params.h"
#include "engine/step.h"

namespace lattice {

struct SequenceSampling {
  bool sample = false;      // this chunk completes the sequence's known tokens: sample the next one
  int64_t prompt_len = 0;   // presence/frequency penalties count tokens from here on
  SamplingParams params;
  uint64_t seed = 0;
  // Set on a sequence's first chunk after a prefix-cache hit: the tokens before start_pos, which no plan may
  // have fed this sampler yet (their K/V came from the cache); the sampler's context restarts from them.
  std::vector<int32_t> context_prefix = {};
};

// A decode row planned ahead (async scheduling): while the previous plan of the same scheduler (step_id - 1) was
// still in flight, so the one token it feeds is a placeholder until the executor writes in the token that step
// sampled for the sequence.
struct PendingToken {
  size_t seq = 0;           // index into batch.seqs: its tokens[0] is the placeholder
  size_t result_index = 0;  // index into the previous step's StepResult::tokens
};

struct StepPlan {
  uint64_t step_id = 0;
  StepBatch batch;                          // what the model runs
  std::vector<SequenceSampling> sampling;   // one per batch.seqs entry
  std::vector<int64_t> released;            // sequences finished since the previous plan
  std::vector<PendingToken> pending;        // rows planned ahead; empty unless async scheduling
};

struct StageTime {
  int rank = 0;        // world rank
  double seconds = 0;  // its part of the step
};

struct StepResult {
  uint64_t step_id = 0;
  std::vector<SampledToken> tokens;   // one per sequence with sample = true, in plan order
  std::vector<StageTime> stage_times;  // per pipeline stage (its TP rank 0); empty in one process
};

// Writes the tokens `previous` (the result of the plan submitted just before `plan`) sampled into plan's
// placeholders. A row whose draw failed feeds token 0: its sequence ends with the error when `previous` is
// collected, and the row planned ahead for it is discarded.
void feed_pending_tokens(StepPlan& plan, const StepResult& previous);

}  // namespace lattice
