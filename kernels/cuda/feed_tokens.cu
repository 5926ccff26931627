#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/feed_tokens.cuh"

namespace lattice::kernels::cuda {

namespace {

__global__ void feed_tokens_kernel(int32_t* __restrict__ ids, const int32_t* __restrict__ tokens,
                                   const int32_t* __restrict__ feeds, int32_t count, int32_t vocab) {
  for (int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x); i < count;
       i += static_cast<int32_t>(gridDim.x * blockDim.x)) {
    const int32_t token = tokens[feeds[2 * i + 1]];
    ids[feeds[2 * i]] = token >= 0 && token < vocab ? token : 0;
  }
}

}  // namespace

void feed_tokens(int32_t* ids, const int32_t* tokens, const int32_t* feeds, int32_t count, int32_t vocab,
                 cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  const int blocks = (count + threads - 1) / threads;
  feed_tokens_kernel<<<blocks, threads, 0, stream>>>(ids, tokens, feeds, count, vocab);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lattice::kernels::cuda
