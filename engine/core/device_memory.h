// Memory on a device other than the CPU, as the core sees it: a table of four functions that the CUDA
// runtime glue (engine/cuda/device_memory.cc) registers, so that lattice_core never links CUDA and a
// CPU-only build still compiles every caller. Tensor uses it for cuda:N storage and copies.
//
// These calls are synchronous with respect to the host: for set-up (weights, caches) and tests, never for the
// step loop, which copies on its compute stream (engine/cuda/device_context.h).
#pragma once

#include <cstddef>

#include "engine/core/dtype.h"

namespace lattice {

struct DeviceMemoryOps {
  void* (*allocate)(size_t bytes, int device);  // throws on failure (out of memory names the sizes)
  void (*release)(void* p, int device);         // never throws
  // Copies `bytes` between any two of cpu and cuda:N; returns when the data is at `dst`.
  void (*copy)(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
  void (*zero)(void* p, size_t bytes, int device);
};

// Called once by the CUDA backend (engine/cuda) before any cuda tensor is made; later calls are no-ops.
void register_device_memory(const DeviceMemoryOps& ops);
// The registered table, or an error naming `device` when the build or the process has no CUDA backend.
const DeviceMemoryOps& device_memory(Device device);

}  // namespace lattice
