// One rank's GPU: created once after choosing the device (cudaSetDevice), it registers device memory with the
// core (engine/core/device_memory.h) and owns what every step on that GPU uses: the compute stream, one
// cuBLASLt planner (GemmLt) with its 32 MiB workspace, and the ops' scratch buffer. Built only with the CUDA
// backend (LATTICE_HAVE_CUDA); nothing here allocates inside the step loop.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/ops/exec_context.h"

struct CUevent_st;  // cudaEvent_t, without the CUDA headers

namespace lattice {

class DeviceContext {
 public:
  // Makes `device` current for this thread and creates the stream, the GemmLt and its workspace.
  explicit DeviceContext(int device);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  Device device() const { return exec_.device; }
  CUstream_st* stream() const { return exec_.stream; }
  // The context ops run in (stream, GemmLt, scratch); valid as long as this object.
  const ops::ExecContext& exec() const { return exec_; }

  // Grows the ops' scratch buffer to at least `bytes` (at start-up, before the step loop).
  void reserve_scratch(size_t bytes);
  // Waits until everything enqueued on the stream has run; a kernel fault becomes a lattice::Error.
  void synchronize() const;

  // Device memory: what is free now and the total (cudaMemGetInfo).
  size_t free_bytes() const;
  size_t total_bytes() const;
  std::string name() const;  // "NVIDIA H200"

 private:
  ops::ExecContext exec_;
  std::unique_ptr<kernels::cuda::GemmLt> gemm_;
  Tensor gemm_workspace_;
};

// Host memory the GPU can copy from asynchronously (cudaHostAlloc), for per-step metadata and results.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& other) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;

  void* data() const { return data_; }
  size_t size() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// A pinned host buffer and its device mirror, for data the host writes every step (step metadata): write through
// host(), then upload() enqueues one copy on the stream; the next host() waits until that copy has run, so the
// host never overwrites bytes still being read.
class UploadBuffer {
 public:
  UploadBuffer(size_t bytes, Device device, CUstream_st* stream);
  ~UploadBuffer();
  UploadBuffer(const UploadBuffer&) = delete;
  UploadBuffer& operator=(const UploadBuffer&) = delete;

  void* host();
  void* device() const { return device_.raw(); }
  void upload(size_t bytes);

 private:
  PinnedBuffer host_;
  Tensor device_;
  CUstream_st* stream_;
  CUevent_st* done_ = nullptr;
  bool pending_ = false;
};

// Enqueues a copy of `bytes` on `stream` (either direction; host memory should be pinned to overlap).
void copy_async(void* dst, const void* src, size_t bytes, CUstream_st* stream);

}  // namespace lattice
