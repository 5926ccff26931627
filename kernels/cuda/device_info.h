// Whether a CUDA device is usable from this process, without crashing when there is none (no driver,
// no GPU, CUDA_VISIBLE_DEVICES empty): tests use it to skip with the reason, the launcher to pick a device.
#pragma once

#include <string>

namespace lattice::kernels::cuda {

struct DeviceInfo {
  int count = 0;            // devices visible to this process
  std::string reason;       // why none is usable ("" when count > 0): the runtime's own message
  std::string name;         // device 0
  int compute_major = 0;    // device 0 compute capability
  int compute_minor = 0;
};

// Queried once per process (cudaGetDeviceCount's error, if any, becomes `reason`, never an exception).
const DeviceInfo& device_info();

inline bool device_visible() { return device_info().count > 0; }

}  // namespace lattice::kernels::cuda
