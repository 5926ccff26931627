// A generation request and what the engine reports back for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampler/sampler.h"
#include "engine/sampler/sampling_params.h"

namespace lattice {

struct Request {
  int64_t id = 0;
  std::vector<int32_t> prompt;
  SamplingParams params;
  int32_t priority = 0;  // higher is admitted first and preempted last
};

// error: the engine could not continue this request alone (its logits could not be sampled); the other requests
// carry on. The message is in TokenEvent::error / RequestOutput::error.
enum class FinishReason { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

// One generated token of one request, in the order the scheduler produced it (what a stream sends), or
// the end of a cancelled or failed request (no token).
struct TokenEvent {
  int64_t request_id;
  std::optional<SampledToken> token;
  FinishReason finish = FinishReason::none;  // set on the request's last event
  int64_t cached_tokens = 0;  // on token events: the request's prompt tokens that came from the prefix cache
  std::string error = {};     // with finish == error: what went wrong
};

struct RequestOutput {
  int64_t id = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose K/V came from the prefix cache at first admission
  std::vector<SampledToken> tokens;
  FinishReason finish = FinishReason::none;
  std::string error;  // with finish == error: what went wrong
};

}  // namespace lattice
