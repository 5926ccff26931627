#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/moe.cuh"

namespace lattice::kernels::cuda {

namespace {

__global__ void moe_route_kernel(const float* __restrict__ logits, int32_t* __restrict__ ids,
                                 float* __restrict__ weights, int64_t tokens, int64_t experts, int64_t top_k,
                                 bool renormalize) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  const float* l = logits + t * experts;
  float top = l[0], sum = 0;
  for (int64_t e = 1; e < experts; ++e) top = fmaxf(top, l[e]);
  for (int64_t e = 0; e < experts; ++e) sum += expf(l[e] - top);
  // k passes, each taking the best expert after the previous pick in (p descending, index ascending) order;
  // p recomputed per pass (the same expression, so the same value) instead of held per expert.
  float prev_p = INFINITY, picked = 0;
  int64_t prev_e = -1;
  for (int64_t j = 0; j < top_k; ++j) {
    int64_t best = -1;
    float best_p = 0;
    for (int64_t e = 0; e < experts; ++e) {
      const float p = expf(l[e] - top) / sum;
      const bool after_prev = p < prev_p || (p == prev_p && e > prev_e);
      if (after_prev && (best < 0 || p > best_p)) {
        best = e;
        best_p = p;
      }
    }
    ids[t * top_k + j] = static_cast<int32_t>(best);
    weights[t * top_k + j] = best_p;
    picked += best_p;
    prev_p = best_p;
    prev_e = best;
  }
  if (renormalize)
    for (int64_t j = 0; j < top_k; ++j) weights[t * top_k + j] /= picked;
}

__global__ void moe_group_kernel(const int32_t* __restrict__ ids, int64_t n, int64_t top_k, int64_t expert_begin,
                                 int64_t expert_end, int32_t* __restrict__ rows, int32_t* __restrict__ positions,
                                 int64_t* __restrict__ offsets) {
  const int64_t local = expert_end - expert_begin;
  for (int64_t a = threadIdx.x; a < n; a += blockDim.x)
    if (ids[a] < expert_begin || ids[a] >= expert_end) positions[a] = -1;
  for (int64_t e = threadIdx.x; e < local; e += blockDim.x) {
    int64_t count = 0;
    for (int64_t a = 0; a < n; ++a) count += ids[a] == expert_begin + e;
    offsets[e + 1] = count;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    for (int64_t e = 0; e < local; ++e) offsets[e + 1] += offsets[e];
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < local; e += blockDim.x) {
    int64_t slot = offsets[e];
    for (int64_t a = 0; a < n; ++a)
      if (ids[a] == expert_begin + e) {
        rows[slot] = static_cast<int32_t>(a / top_k);
        positions[a] = static_cast<int32_t>(slot);
        ++slot;
      }
  }
}

template <typename T>
__global__ void moe_combine_kernel(const T* __restrict__ expert_out, const int32_t* __restrict__ positions,
                                   const float* __restrict__ weights, T* __restrict__ out, int64_t top_k,
                                   int64_t dim) {
  const int64_t t = blockIdx.x;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float acc = 0;
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t slot = positions[t * top_k + j];
      if (slot >= 0) acc += weights[t * top_k + j] * detail::to_f32(expert_out[static_cast<int64_t>(slot) * dim + i]);
    }
    out[t * dim + i] = detail::from_f32<T>(acc);
  }
}

}  // namespace

void moe_route(const float* logits, int32_t* ids, float* weights, int64_t tokens, int64_t experts, int64_t top_k,
               bool renormalize, cudaStream_t stream) {
  if (tokens == 0) return;
  const int threads = 128;
  moe_route_kernel<<<static_cast<unsigned>((tokens + threads - 1) / threads), threads, 0, stream>>>(
      logits, ids, weights, tokens, experts, top_k, renormalize);
  CUDA_CHECK_LAUNCH();
}

void moe_group(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t expert_begin, int64_t expert_end,
               int32_t* rows, int32_t* positions, int64_t* offsets, cudaStream_t stream) {
  const int threads = static_cast<int>(std::clamp<int64_t>(expert_end - expert_begin, 32, 1024));
  moe_group_kernel<<<1, threads, 0, stream>>>(ids, tokens * top_k, top_k, expert_begin, expert_end, rows, positions,
                                              offsets);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void moe_combine(const T* expert_out, const int32_t* positions, const float* weights, T* out, int64_t tokens,
                 int64_t top_k, int64_t dim, cudaStream_t stream) {
  if (tokens == 0) return;
  const int threads = static_cast<int>(std::clamp<int64_t>(dim, 32, 256));
  moe_combine_kernel<<<static_cast<unsigned>(tokens), threads, 0, stream>>>(expert_out, positions, weights, out,
                                                                            top_k, dim);
  CUDA_CHECK_LAUNCH();
}

template void moe_combine<float>(const float*, const int32_t*, const float*, float*, int64_t, int64_t, int64_t,
                                 cudaStream_t);
template void moe_combine<__half>(const __half*, const int32_t*, const float*, __half*, int64_t, int64_t, int64_t,
                                  cudaStream_t);
template void moe_combine<__nv_bfloat16>(const __nv_bfloat16*, const int32_t*, const float*, __nv_bfloat16*, int64_t,
                                         int64_t, int64_t, cudaStream_t);

}  // namespace lattice::kernels::cuda
