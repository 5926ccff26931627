#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/sampling.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

struct Best {
  float value;
  int32_t index;
};

// The larger value; the lower index on ties; a NaN loses to anything.
__device__ __forceinline__ Best better(Best a, Best b) {
  if (isnan(b.value) || b.index < 0) return a;
  if (isnan(a.value) || a.index < 0) return b;
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ __forceinline__ Best warp_best(Best x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Best other{__shfl_xor_sync(0xffffffffu, x.value, offset), __shfl_xor_sync(0xffffffffu, x.index, offset)};
    x = better(x, other);
  }
  return x;
}

// One block per row: argmax, then the sum of exp(x - max) for the log-softmax denominator.
template <typename T>
__global__ void __launch_bounds__(kThreads)
greedy_kernel(const T* __restrict__ logits, int64_t vocab, int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  __shared__ Best warp_results[32];
  __shared__ float scratch[32];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  Best best{-INFINITY, -1};
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) best = better(best, Best{detail::to_f32(row[i]), static_cast<int32_t>(i)});
  best = warp_best(best);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_results[warp] = best;
  __syncthreads();
  best = lane < static_cast<int>(blockDim.x / 32) ? warp_results[lane] : Best{-INFINITY, -1};
  best = warp_best(best);  // every warp now holds the row's best
  if (best.index < 0) best = Best{NAN, 0};  // an all-NaN row

  if (logprobs == nullptr) {
    if (threadIdx.x == 0) tokens[blockIdx.x] = best.index;
    return;
  }
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = detail::to_f32(row[i]);
    if (!isnan(x)) sum += expf(x - best.value);
  }
  sum = detail::block_sum(sum, scratch);
  if (threadIdx.x == 0) {
    tokens[blockIdx.x] = best.index;
    logprobs[blockIdx.x] = isnan(best.value) ? NAN : -logf(sum);  // logits[best] - (best + log(sum))
  }
}

}  // namespace

template <typename T>
void greedy_sample(const T* logits, int64_t rows, int64_t vocab, int32_t* tokens, float* logprobs,
                   cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0 && vocab <= INT32_MAX, "greedy_sample: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "greedy_sample: ", rows, " rows is more than one grid dimension holds");
  greedy_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, tokens, logprobs);
  CUDA_CHECK_LAUNCH();
}

template void greedy_sample<float>(const float*, int64_t, int64_t, int32_t*, float*, cudaStream_t);
template void greedy_sample<__half>(const __half*, int64_t, int64_t, int32_t*, float*, cudaStream_t);
template void greedy_sample<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, int32_t*, float*, cudaStream_t);

}  // namespace lattice::kernels::cuda
