// Step plans and results on the wire (Protobuf, parallel/step_plan.proto).
#pragma once

#include <string>

#include "engine/scheduler/step_plan.h"

namespace lattice::parallel {

std::string encode_plan(const StepPlan& plan);
std::string encode_shutdown();

struct DecodedPlan {
  bool shutdown = false;
  StepPlan plan;
};
DecodedPlan decode_plan(const std::string& bytes);

std::string encode_result(const StepResult& result);
StepResult decode_result(const std::string& bytes);

}  // namespace lattice::parallel
