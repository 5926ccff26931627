#include "kernels/cuda/device_info.h"

#include <cuda_runtime_api.h>

namespace lattice::kernels::cuda {

namespace {

DeviceInfo query() {
  DeviceInfo info;
  const cudaError_t status = cudaGetDeviceCount(&info.count);
  if (status != cudaSuccess) {
    info.count = 0;
    info.reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    cudaGetLastError();  // reset the last-error state so later calls report their own errors
    return info;
  }
  if (info.count == 0) {
    info.reason = "cudaGetDeviceCount returned 0 devices";
    return info;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    info.name = prop.name;
    info.compute_major = prop.major;
    info.compute_minor = prop.minor;
  }
  return info;
}

}  // namespace

const DeviceInfo& device_info() {
  static const DeviceInfo info = query();
  return info;
}

}  // namespace lattice::kernels::cuda
