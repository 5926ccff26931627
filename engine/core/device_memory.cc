#include "engine/core/device_memory.h"

#include <mutex>

#include "engine/core/error.h"

namespace lattice {
namespace {

DeviceMemoryOps g_ops{};
std::once_flag g_once;
bool g_registered = false;

}  // namespace

void register_device_memory(const DeviceMemoryOps& ops) {
  std::call_once(g_once, [&] {
    g_ops = ops;
    g_registered = true;
  });
}

const DeviceMemoryOps& device_memory(Device device) {
  LATTICE_CHECK(g_registered, device.str(),
                " memory needs the CUDA backend: this build has none, or no CUDA device context was created");
  return g_ops;
}

}  // namespace lattice
