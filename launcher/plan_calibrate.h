// `lattice plan calibrate`: times the engine's own ops (ops::linear at decode and prefill shapes, paged attention
// in decode and prefill, rms_norm, a tiny op for the launch overhead) on one device and writes the achieved
// fractions of the peaks into a hardware profile (planner/hardware_profile.h).
#pragma once

#include <string>

#include "models/model_config.h"
#include "planner/hardware_profile.h"

namespace lattice::launcher {

// `device`: "cpu" (peaks are this machine's measured read bandwidth and sgemm ceiling) or "cuda" (peaks are
// `base`'s datasheet numbers; the read ceiling is measured and reported alongside). Op shapes come from `shape`'s
// hidden/intermediate/head sizes. Links, memory and node size are copied from `base`.
planner::HardwareProfile calibrate_profile(const std::string& device, const ModelConfig& shape,
                                           const planner::HardwareProfile& base);

}  // namespace lattice::launcher
