// Grouped-query decode kernel. Block (partition, KV head x head chunk, sequence) with 128 threads: a cache row of
// head_dim elements is read by head_dim / 8 lanes, 16 bytes each, so a pass of the block covers 128 / (head_dim
// / 8) positions and four passes are loaded before the first is used. Each lane keeps its 8 dims of the chunk's
// (up to 4) query rows in registers and scores every position it loads against all of them; the softmax runs per
// head over the partition in shared memory (base 2, scale folded into q); then the lanes read V the same way and
// accumulate the weighted rows, reduced across passes and warps at the end.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_args.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_decode_grouped.cuh"

namespace lattice::kernels::cuda::detail {

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kPartition = static_cast<int>(kDecodePartition);
constexpr int kUnroll = 4;  // passes of loads in flight
constexpr float kLn2 = 0.6931471805599453f;

template <typename T> __device__ __forceinline__ float2 unpack2(uint32_t bits);
template <> __device__ __forceinline__ float2 unpack2<__half>(uint32_t bits) {
  return __half22float2(*reinterpret_cast<const __half2*>(&bits));
}
template <> __device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t bits) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&bits));
}

template <typename T> __device__ __forceinline__ void unpack8(const uint4& raw, float (&f)[8]) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const float2 pair = unpack2<T>(words[w]);
    f[2 * w] = pair.x;
    f[2 * w + 1] = pair.y;
  }
}

template <typename T> __device__ __forceinline__ uint4 load16(const T* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}

// G: query heads a block serves (the group rounded up to 1, 2 or 4; a larger group, which only a caller naming this
// kernel sends here, takes several blocks per KV head).
template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads) decode_grouped_kernel(const DecodeArgs<T> a) {
  constexpr int L = D / 8;                // lanes per cache row
  constexpr int kRowsPerPass = kThreads / L;
  constexpr int kStep = kRowsPerPass * kUnroll;
  constexpr int kScoreFloats = G * kPartition, kPartialFloats = kWarps * G * D;
  __shared__ __align__(16) float shared[kScoreFloats > kPartialFloats ? kScoreFloats : kPartialFloats];
  __shared__ int64_t slots[kPartition];
  __shared__ float head_max[G], head_sum[G];
  float* scores = shared;   // [G][kPartition]: scores, then softmax weights
  float* partial = shared;  // [kWarps][G][D]: the warps' weighted sums, once the weights are consumed

  const T* __restrict__ q = a.q;
  const int heads = a.heads;
  const int split = blockIdx.x, s = blockIdx.z, splits = gridDim.x;
  const int ctx = a.context_lens[s];
  // This partition's visible positions [start, end): none past the sequence's end (graph-padded bounds) or wholly
  // before its window, and the merge reads only the partitions that hold some.
  const int start = max(split * a.partition, first_visible(ctx, a.window));
  const int end = min(ctx, split * a.partition + a.partition);
  if (start >= end) return;
  const int n = end - start;
  const int group = heads / a.kv_heads, chunks = (group + G - 1) / G;
  const int kv_head = blockIdx.y / chunks;
  const int h0 = kv_head * group + (blockIdx.y % chunks) * G;
  const int nh = min(G, kv_head * group + group - h0);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int piece = tid % L, pass_row = tid / L;
  const int64_t kv_row = static_cast<int64_t>(a.kv_heads) * D;
  const T* k_base = a.k_cache + static_cast<int64_t>(kv_head) * D + piece * 8;
  const T* v_base = a.v_cache + static_cast<int64_t>(kv_head) * D + piece * 8;
  const int32_t* table = a.block_tables + s * a.max_blocks_per_seq;

  for (int i = tid; i < n; i += kThreads) slots[i] = paged_slot(table, start + i, a.block_size);
  float qr[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (g < nh) {
      unpack8<T>(load16(q + (static_cast<int64_t>(s) * heads + h0 + g) * D + piece * 8), qr[g]);
#pragma unroll
      for (int e = 0; e < 8; ++e) qr[g][e] *= a.scale_log2;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) qr[g][e] = 0.0f;  // a padding head: scores 0, never written out
    }
  }
  __syncthreads();

  for (int i0 = 0; i0 < n; i0 += kStep) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = i0 + u * kRowsPerPass + pass_row;
      raw[u] = i < n ? load16(k_base + slots[i] * kv_row) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[8], dot[G];
      unpack8<T>(raw[u], kf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        dot[g] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot[g] += qr[g][e] * kf[e];
      }
#pragma unroll
      for (int offset = L / 2; offset > 0; offset /= 2)
#pragma unroll
        for (int g = 0; g < G; ++g) dot[g] += __shfl_xor_sync(0xffffffffu, dot[g], offset);
      const int i = i0 + u * kRowsPerPass + pass_row;
#pragma unroll
      for (int g = 0; g < G; ++g)  // L >= 8 >= G lanes hold each full dot: lane `piece` stores head `piece`
        if (piece == g && i < n) scores[g * kPartition + i] = dot[g];
    }
  }
  __syncthreads();

  for (int g = warp; g < G; g += kWarps) {
    float* row = scores + g * kPartition;
    float mx = -INFINITY;
    for (int i = lane; i < n; i += 32) mx = fmaxf(mx, row[i]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int i = lane; i < n; i += 32) {
      const float w = exp2f(row[i] - mx);
      row[i] = w;
      sum += w;
    }
    sum = warp_sum(sum);
    if (lane == 0) {
      head_max[g] = mx;
      head_sum[g] = sum;
    }
  }
  __syncthreads();

  float acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.0f;
  for (int i0 = 0; i0 < n; i0 += kStep) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = i0 + u * kRowsPerPass + pass_row;
      raw[u] = i < n ? load16(v_base + slots[i] * kv_row) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = i0 + u * kRowsPerPass + pass_row;
      if (i >= n) continue;
      float vf[8];
      unpack8<T>(raw[u], vf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float w = scores[g * kPartition + i];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] += w * vf[e];
      }
    }
  }
#pragma unroll
  for (int offset = 16; offset >= L; offset /= 2)  // the warp's passes rows into its first L lanes
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], offset);
  __syncthreads();  // every weight is read: partial may overwrite them
  if (lane < L) {
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int e = 0; e < 8; ++e) partial[(warp * G + g) * D + piece * 8 + e] = acc[g][e];
  }
  __syncthreads();

  const int64_t first = static_cast<int64_t>(s) * heads + h0;  // row of head h0 in q, out and the partials
  for (int idx = tid; idx < nh * D; idx += kThreads) {
    const int g = idx / D, d = idx % D;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += partial[(w * G + g) * D + d];
    v /= head_sum[g];
    if (splits == 1)
      a.out[(first + g) * D + d] = from_f32<T>(v);
    else
      a.part_out[((first + g) * splits + split) * D + d] = v;
  }
  if (splits > 1 && tid < nh) {
    const int64_t idx = (first + tid) * splits + split;
    a.part_max[idx] = head_max[tid] * kLn2;  // the merge works in natural-log units
    a.part_sum[idx] = head_sum[tid];
  }
}

template <typename T, int D, int G>
void launch(const DecodeArgs<T>& args, int64_t num_seqs, int64_t splits, cudaStream_t stream) {
  const int64_t group = args.heads / args.kv_heads;
  const int64_t blocks_per_seq = args.kv_heads * ((group + G - 1) / G);
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(blocks_per_seq),
                  static_cast<unsigned>(num_seqs));
  decode_grouped_kernel<T, D, G><<<grid, kThreads, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

// The group rounded up to the query heads a block serves: 1, 2 or 4 (a larger group takes several blocks).
template <typename T, int D>
void launch_group(const DecodeArgs<T>& args, int64_t num_seqs, int64_t splits, cudaStream_t stream) {
  const int group = args.heads / args.kv_heads;
  if (group <= 1)
    launch<T, D, 1>(args, num_seqs, splits, stream);
  else if (group <= 2)
    launch<T, D, 2>(args, num_seqs, splits, stream);
  else
    launch<T, D, 4>(args, num_seqs, splits, stream);
}

}  // namespace

template <typename T>
void paged_attention_decode_grouped(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                    int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                                    int64_t partition, int64_t splits, T* out, float* part_out, float* part_max,
                                    float* part_sum, const PagedLayout& layout, float scale, int window,
                                    cudaStream_t stream) {
  const DecodeArgs<T> args = make_decode_args(q, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens,
                                                 partition, out, part_out, part_max, part_sum, layout, scale, window);
  switch (layout.head_dim) {
    case 64: launch_group<T, 64>(args, num_seqs, splits, stream); return;
    case 128: launch_group<T, 128>(args, num_seqs, splits, stream); return;
    case 256: launch_group<T, 256>(args, num_seqs, splits, stream); return;
    default:
      LATTICE_THROW("paged_attention_decode_grouped: head_dim ", layout.head_dim,
                    " is not one of 64, 128, 256 (the dispatcher should not have chosen this kernel)");
  }
}

#define LATTICE_INSTANTIATE(T)                                                                                    \
  template void paged_attention_decode_grouped<T>(const T*, const T*, const T*, const int32_t*, int64_t,          \
                                                  const int32_t*, int64_t, int64_t, int64_t, T*, float*, float*, \
                                                  float*, const PagedLayout&, float, int, cudaStream_t);
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda::detail
