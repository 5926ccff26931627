#include "engine/cuda/device_context.h"

#include <cuda_runtime_api.h>

#include "engine/core/device_memory.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm.cuh"

namespace lattice {
namespace {

constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;  // what cuBLAS itself uses on Hopper

void* allocate(size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    LATTICE_THROW("cannot allocate ", bytes, " bytes on cuda:", device, " (", cudaGetErrorString(status), "; ", free,
                  " of ", total, " bytes free)");
  }
  return p;
}

void release(void* p, int /*device*/) { cudaFree(p); }

// cudaMemcpy and cudaMemset run on the legacy stream, which neither waits for the engine's non-blocking
// streams nor is waited for by them; a copy from pageable host memory may even return before the data arrives.
// These are the synchronous set-up and test copies, so they wait for the whole device before and after: a
// tensor read back right after a step sees the step's results.
void copy(void* dst, Device, const void* src, Device, size_t bytes) {
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
  CUDA_CHECK(cudaDeviceSynchronize());
}

void zero(void* p, size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaMemset(p, 0, bytes));
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace

DeviceContext::DeviceContext(int device) {
  register_device_memory({allocate, release, copy, zero});
  CUDA_CHECK(cudaSetDevice(device));
  exec_.device = Device::cuda(device);
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  exec_.stream = stream;
  gemm_workspace_ = Tensor::empty({static_cast<int64_t>(kGemmWorkspaceBytes)}, DType::u8, exec_.device);
  gemm_ = std::make_unique<kernels::cuda::GemmLt>(gemm_workspace_.raw(), kGemmWorkspaceBytes);
  exec_.gemm = gemm_.get();
}

DeviceContext::~DeviceContext() {
  if (exec_.stream) cudaStreamSynchronize(exec_.stream);
  gemm_.reset();
  exec_.scratch = Tensor();
  gemm_workspace_ = Tensor();
  if (exec_.stream) cudaStreamDestroy(exec_.stream);
}

void DeviceContext::reserve_scratch(size_t bytes) {
  if (exec_.scratch.defined() && exec_.scratch.nbytes() >= bytes) return;
  synchronize();  // the old buffer may still be in use by enqueued work
  exec_.scratch = Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, exec_.device);
}

void DeviceContext::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(exec_.stream)); }

size_t DeviceContext::free_bytes() const {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

size_t DeviceContext::total_bytes() const {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return total;
}

std::string DeviceContext::name() const {
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, exec_.device.index));
  return prop.name;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes) CUDA_CHECK(cudaHostAlloc(&data_, bytes, cudaHostAllocDefault));
}

PinnedBuffer::~PinnedBuffer() {
  if (data_) cudaFreeHost(data_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

UploadBuffer::UploadBuffer(size_t bytes, Device device, CUstream_st* stream)
    : host_(bytes), device_(Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, device)), stream_(stream) {
  cudaEvent_t event = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  done_ = event;
}

UploadBuffer::~UploadBuffer() {
  if (done_) {
    cudaEventSynchronize(done_);
    cudaEventDestroy(done_);
  }
}

void* UploadBuffer::host() {
  if (pending_) CUDA_CHECK(cudaEventSynchronize(done_));
  pending_ = false;
  return host_.data();
}

void UploadBuffer::upload(size_t bytes) {
  LATTICE_CHECK(bytes <= host_.size(), "upload of ", bytes, " bytes into a buffer of ", host_.size());
  copy_async(device_.raw(), host_.data(), bytes, stream_);
  CUDA_CHECK(cudaEventRecord(done_, stream_));
  pending_ = true;
}

void copy_async(void* dst, const void* src, size_t bytes, CUstream_st* stream) {
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
}

}  // namespace lattice
