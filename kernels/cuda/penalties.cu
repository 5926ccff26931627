#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/penalties.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kThreads = 512;

__host__ __device__ int64_t bitmap_words(int64_t vocab) { return (vocab + 31) / 32; }

// Sets bit `i`; true for the one caller that set it first.
__device__ __forceinline__ bool claim(uint32_t* bitmap, int32_t i) {
  const uint32_t bit = 1u << (i % 32);
  return (atomicOr(&bitmap[i / 32], bit) & bit) == 0;
}

// One block per row: copy, then each distinct context token is penalised by the thread that claimed it, with
// the reference's arithmetic (kernels/cpu/penalties.cc, no fused multiply-add on either side: the same bits).
template <typename T>
__global__ void __launch_bounds__(kThreads)
penalties_kernel(const T* __restrict__ logits, float* __restrict__ out, int64_t vocab,
                 const PenaltyRow* __restrict__ params, const int32_t* __restrict__ tokens,
                 uint32_t* __restrict__ bitmaps) {
  const int64_t r = blockIdx.x;
  const PenaltyRow p = params[r];
  const T* row = logits + r * vocab;
  float* dst = out + r * vocab;
  const int64_t words = bitmap_words(vocab);
  uint32_t* seen = bitmaps + r * 2 * words;  // any context token
  uint32_t* generated = seen + words;        // generated tokens
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) dst[i] = detail::to_f32(row[i]);
  for (int64_t i = threadIdx.x; i < 2 * words; i += blockDim.x) seen[i] = 0u;
  __syncthreads();

  const int32_t* context = tokens + p.context_begin;
  if (p.repetition != 1.0f) {
    for (int32_t j = threadIdx.x; j < p.context_len; j += blockDim.x) {
      const int32_t t = context[j];
      if (t < 0 || t >= vocab || !claim(seen, t)) continue;
      const float x = dst[t];
      dst[t] = x > 0 ? x / p.repetition : x * p.repetition;
    }
  }
  __syncthreads();
  if (p.presence != 0.0f || p.frequency != 0.0f) {
    for (int32_t j = p.prompt_len + threadIdx.x; j < p.context_len; j += blockDim.x) {
      const int32_t t = context[j];
      if (t < 0 || t >= vocab || !claim(generated, t)) continue;
      int32_t count = 0;  // occurrences among the generated tokens (a few thousand at most)
      for (int32_t g = p.prompt_len; g < p.context_len; ++g) count += context[g] == t;
      dst[t] -= __fadd_rn(p.presence, __fmul_rn(p.frequency, static_cast<float>(count)));
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
token_logprobs_kernel(const T* __restrict__ logits, int64_t vocab, const int32_t* __restrict__ chosen,
                      float* __restrict__ logprobs) {
  __shared__ float scratch[32];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float local_max = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = detail::to_f32(row[i]);
    if (!isnan(x)) local_max = fmaxf(local_max, x);
  }
  const float top = detail::block_max(local_max, scratch);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = detail::to_f32(row[i]);
    if (!isnan(x)) sum += expf(x - top);
  }
  sum = detail::block_sum(sum, scratch);
  if (threadIdx.x == 0) {
    const int32_t t = chosen[blockIdx.x];
    logprobs[blockIdx.x] = t >= 0 && t < vocab ? detail::to_f32(row[t]) - top - logf(sum) : NAN;
  }
}

}  // namespace

size_t penalties_workspace_bytes(int64_t rows, int64_t vocab) {
  return sizeof(uint32_t) * static_cast<size_t>(rows * 2 * bitmap_words(vocab));
}

template <typename T>
void apply_penalties(const T* logits, float* out, int64_t rows, int64_t vocab, const PenaltyRow* params,
                     const int32_t* tokens, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0 && vocab <= INT32_MAX, "apply_penalties: vocabulary of ", vocab, " is not supported");
  LATTICE_CHECK(rows <= INT32_MAX, "apply_penalties: ", rows, " rows is more than one grid dimension holds");
  const size_t needed = penalties_workspace_bytes(rows, vocab);
  LATTICE_CHECK(workspace_bytes >= needed, "apply_penalties: workspace of ", workspace_bytes, " bytes, needs ", needed);
  penalties_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, out, vocab, params, tokens,
                                                                           static_cast<uint32_t*>(workspace));
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void token_logprobs(const T* logits, int64_t rows, int64_t vocab, const int32_t* chosen, float* logprobs,
                    cudaStream_t stream) {
  if (rows == 0) return;
  LATTICE_CHECK(vocab > 0 && rows <= INT32_MAX, "token_logprobs: ", rows, " rows of ", vocab,
                " logits is not supported");
  token_logprobs_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, chosen, logprobs);
  CUDA_CHECK_LAUNCH();
}

#define LATTICE_INSTANTIATE(T)                                                                                    \
  template void apply_penalties<T>(const T*, float*, int64_t, int64_t, const PenaltyRow*, const int32_t*, void*,  \
                                   size_t, cudaStream_t);                                                          \
  template void token_logprobs<T>(const T*, int64_t, int64_t, const int32_t*, float*, cudaStream_t);
LATTICE_INSTANTIATE(float)
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
