// Host-to-device uploads of data produced on the host in chunks (weights cut out of a mmap'd checkpoint):
// each chunk is written into one reused pinned buffer and copied asynchronously on the uploader's own stream,
// two halves in turn (an event per half says when its copy is done), so producing one chunk overlaps the copy
// of the previous one. Built only with the CUDA
// backend (LATTICE_HAVE_CUDA).
#pragma once

#include <cstddef>
#include <functional>

#include "engine/cuda/device_context.h"

struct CUevent_st;  // cudaEvent_t, without the CUDA headers

namespace lattice {

class DeviceUploader {
 public:
  // Produces bytes [offset, offset + bytes) of the data into `host` (pinned staging memory).
  using Produce = std::function<void(void* host, size_t offset, size_t bytes)>;

  // A stream on cuda:`device` and `staging_bytes` of pinned memory (two halves of staging_bytes / 2).
  DeviceUploader(int device, size_t staging_bytes);
  ~DeviceUploader();
  DeviceUploader(const DeviceUploader&) = delete;
  DeviceUploader& operator=(const DeviceUploader&) = delete;

  int device() const { return device_; }
  CUstream_st* stream() const { return stream_; }

  // Fills `bytes` of device memory at `dst` from produce() calls in order, each for at most half the staging
  // buffer and a multiple of `align` bytes (so chunks hold whole elements); returns when all of it is on the
  // device.
  void upload(void* dst, size_t bytes, size_t align, const Produce& produce);
  // Waits for everything enqueued on the stream (an upload, or kernels a caller launched on stream()).
  void synchronize() const;

 private:
  int device_;
  CUstream_st* stream_ = nullptr;
  CUevent_st* copied_[2] = {nullptr, nullptr};  // recorded after the copy out of each staging half
  PinnedBuffer staging_;
};

}  // namespace lattice
