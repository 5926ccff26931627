#include "kernels/cuda/check_logits.cuh"
#include "kernels/cuda/cuda_check.h"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

__global__ void __launch_bounds__(kThreads)
check_logits_kernel(const float* __restrict__ logits, int64_t vocab, int32_t* __restrict__ status) {
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  int nan = 0, positive_infinity = 0, finite = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = row[i];
    nan |= isnan(x);
    positive_infinity |= x == INFINITY;
    finite |= isfinite(x);
  }
  nan = __syncthreads_or(nan);
  positive_infinity = __syncthreads_or(positive_infinity);
  finite = __syncthreads_or(finite);
  if (threadIdx.x == 0) status[blockIdx.x] = static_cast<int32_t>(cpu::classify_logits(nan, positive_infinity, finite));
}

}  // namespace

void check_logits(const float* logits, int64_t rows, int64_t vocab, int32_t* status, cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0, "check_logits: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "check_logits: ", rows, " rows is more than one grid dimension holds");
  check_logits_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, status);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lattice::kernels::cuda
