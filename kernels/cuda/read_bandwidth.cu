#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/read_bandwidth.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 512;
constexpr int kBlocks = 132 * 8;  // a few waves on the largest GPUs; the loop strides over the rest

__global__ void read_all_kernel(const float4* data, size_t count, float* partial) {
  float sum = 0.0f;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float4 v = __ldcs(data + i);  // streaming: no reuse, do not keep in L2
    sum += v.x + v.y + v.z + v.w;
  }
  __shared__ float warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) total += warp_sums[w];
    partial[blockIdx.x] = total;
  }
}

}  // namespace

int read_all_blocks() { return kBlocks; }

void read_all(const void* data, size_t bytes, float* partial, cudaStream_t stream) {
  LATTICE_CHECK(bytes % sizeof(float4) == 0, "read_all: ", bytes, " bytes is not a multiple of 16");
  read_all_kernel<<<kBlocks, kThreads, 0, stream>>>(static_cast<const float4*>(data), bytes / sizeof(float4), partial);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lattice::kernels::cuda
