#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/sample_top_k.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

// splitmix64 finaliser over (seed, offset): a counter-based draw, identical on host and device.
__host__ __device__ __forceinline__ double uniform_from(uint64_t seed, uint64_t offset) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (offset + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;  // 53 random bits in [0, 1)
}

struct Candidate {
  float value;
  int32_t index;  // -1: none
};

// a ranks before b: larger value, then lower index.
__device__ __forceinline__ bool ranks_before(Candidate a, Candidate b) {
  if (b.index < 0) return a.index >= 0;
  if (a.index < 0) return false;
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

__device__ __forceinline__ Candidate block_best(Candidate c, Candidate* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, c.value, offset), __shfl_xor_sync(0xffffffffu, c.index, offset)};
    if (ranks_before(other, c)) c = other;
  }
  if (lane == 0) scratch[warp] = c;
  __syncthreads();
  c = lane < warps ? scratch[lane] : Candidate{-INFINITY, -1};
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, c.value, offset), __shfl_xor_sync(0xffffffffu, c.index, offset)};
    if (ranks_before(other, c)) c = other;
  }
  __syncthreads();
  return c;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
sample_top_k_kernel(const T* __restrict__ logits, int64_t vocab, const SamplingRow* __restrict__ params,
                    int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  __shared__ Candidate scratch[32];
  __shared__ float sum_scratch[32];
  __shared__ Candidate chosen[kMaxTopK];
  const int64_t r = blockIdx.x;
  const SamplingRow p = params[r];
  const T* row = logits + r * vocab;
  if (p.top_k < 1 || p.top_k > kMaxTopK) {
    if (threadIdx.x == 0) {
      tokens[r] = -1;
      if (logprobs) logprobs[r] = NAN;
    }
    return;
  }

  // k passes: each finds the best element ranking after the previous pick, so no membership test is needed.
  Candidate previous{INFINITY, -1};
  int found = 0;
  for (; found < p.top_k; ++found) {
    Candidate best{-INFINITY, -1};
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const Candidate c{detail::to_f32(row[i]), static_cast<int32_t>(i)};
      if (isnan(c.value)) continue;
      const bool after_previous = previous.index < 0 || ranks_before(previous, c);
      if (after_previous && ranks_before(c, best)) best = c;
    }
    best = block_best(best, scratch);
    if (best.index < 0) break;  // fewer than k non-NaN logits
    if (threadIdx.x == 0) chosen[found] = best;
    previous = best;
  }

  // The raw log-softmax denominator for the logprob.
  __syncthreads();  // chosen[] visible to all
  float sum = 0.0f;
  const float top = found > 0 ? chosen[0].value : 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = detail::to_f32(row[i]);
    if (!isnan(x)) sum += expf(x - top);
  }
  sum = detail::block_sum(sum, sum_scratch);

  if (threadIdx.x != 0) return;
  if (found == 0) {  // an all-NaN row
    tokens[r] = 0;
    if (logprobs) logprobs[r] = NAN;
    return;
  }
  // Candidate probabilities under the temperature, then the top-p prefix, then the draw.
  float weights[kMaxTopK];
  float total = 0.0f;
  for (int i = 0; i < found; ++i) {
    weights[i] = expf((chosen[i].value - top) / p.temperature);
    total += weights[i];
  }
  int keep = 0;
  float kept = 0.0f;
  while (keep < found) {
    kept += weights[keep++];
    if (kept >= p.top_p * total) break;
  }
  const float target = static_cast<float>(uniform_from(p.seed, p.offset)) * kept;
  int pick = keep - 1;
  float running = 0.0f;
  for (int i = 0; i < keep; ++i) {
    running += weights[i];
    if (target < running) {
      pick = i;
      break;
    }
  }
  tokens[r] = chosen[pick].index;
  if (logprobs) logprobs[r] = chosen[pick].value - top - logf(sum);
}

}  // namespace

double sampling_uniform(uint64_t seed, uint64_t offset) { return uniform_from(seed, offset); }

template <typename T>
void sample_top_k(const T* logits, int64_t rows, int64_t vocab, const SamplingRow* params, int32_t* tokens,
                  float* logprobs, cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0 && vocab <= INT32_MAX, "sample_top_k: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "sample_top_k: ", rows, " rows is more than one grid dimension holds");
  sample_top_k_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, params, tokens, logprobs);
  CUDA_CHECK_LAUNCH();
}

template void sample_top_k<float>(const float*, int64_t, int64_t, const SamplingRow*, int32_t*, float*, cudaStream_t);
template void sample_top_k<__half>(const __half*, int64_t, int64_t, const SamplingRow*, int32_t*, float*,
                                   cudaStream_t);
template void sample_top_k<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, const SamplingRow*, int32_t*,
                                          float*, cudaStream_t);

}  // namespace lattice::kernels::cuda
