#include "engine/weights/device_upload.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"

namespace lattice {

DeviceUploader::DeviceUploader(int device, size_t staging_bytes) : device_(device) {
  CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
  for (CUevent_st*& e : copied_) {
    cudaEvent_t event = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    e = event;
  }
  staging_ = PinnedBuffer(staging_bytes);
}

DeviceUploader::~DeviceUploader() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (CUevent_st* e : copied_)
    if (e) cudaEventDestroy(e);
  if (stream_) cudaStreamDestroy(stream_);
}

void DeviceUploader::upload(void* dst, size_t bytes, size_t align, const Produce& produce) {
  const size_t chunk = staging_.size() / 2 / align * align;
  LATTICE_CHECK(chunk > 0, "a staging buffer of ", staging_.size(), " bytes cannot hold two chunks of ", align,
                " bytes");
  auto* halves = static_cast<char*>(staging_.data());
  int half = 0;
  for (size_t offset = 0; offset < bytes; offset += chunk, half ^= 1) {
    const size_t n = std::min(chunk, bytes - offset);
    char* host = halves + half * chunk;
    CUDA_CHECK(cudaEventSynchronize(copied_[half]));  // the last copy out of this half is done
    produce(host, offset, n);
    copy_async(static_cast<char*>(dst) + offset, host, n, stream_);
    CUDA_CHECK(cudaEventRecord(copied_[half], stream_));
  }
  synchronize();
}

void DeviceUploader::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace lattice
