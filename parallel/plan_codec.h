// Step plans and results on the wire (Protobuf, parallel/step_plan.proto).
#pragma once

#include <string>

#include "engine/scheduler/step_plan.h"

namespace lattice::parallel {

std::string encode_plan(const StepPlan& plan);
std::string encode_shutdown();
// Bytes that, appended to an encoded plan, add one entry to its stage times.
std::string encode_stage_time(const StageTime& time);

struct DecodedPlan {
  bool shutdown = false;
  StepPlan plan;
  std::vector<StageTime> stage_times;  // of the stages before this one
};
DecodedPlan decode_plan(const std::string& bytes);

std::string encode_result(const StepResult& result);
StepResult decode_result(const std::string& bytes);

}  // namespace lattice::parallel
