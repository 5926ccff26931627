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

struct StepPlan {
  uint64_t step_id = 0;
  StepBatch batch;                          // what the model runs
  std::vector<SequenceSampling> sampling;   // one per batch.seqs entry
  std::vector<int64_t> released;            // sequences finished since the previous plan
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

}  // namespace lattice
