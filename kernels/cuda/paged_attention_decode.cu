#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_decode_grouped.cuh"
#include "kernels/cuda/paged_attention_decode_mma.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kDecodeThreads = 128;
constexpr int kPartition = static_cast<int>(kDecodePartition);  // sizes the shared arrays

// A partition size and the batch sizes that use it.
struct PartitionTier {
  int64_t min_seqs, max_seqs, partition;
};
constexpr PartitionTier kTiers[] = {{1, 3, 128}, {4, 15, 256}, {16, INT64_MAX, kDecodePartition}};

int64_t num_partitions(int64_t max_context_len, int64_t partition) {
  return (max_context_len + partition - 1) / partition;
}

size_t step_bytes(int64_t num_seqs, const PagedLayout& layout, int64_t splits) {
  if (splits <= 1) return 0;
  return sizeof(float) * static_cast<size_t>(num_seqs * layout.heads * splits * (layout.head_dim + 2));
}

// The SIMT kernel (f32, and what the other two do not take: see paged_attention_decode_kernel). Block (partition,
// head, sequence). Warps take positions round-robin for the q.k scores (lanes split head_dim), then threads split
// head_dim for the weighted sum of V. With one partition the block writes the normalised output; otherwise it writes
// its normalised partial output, max and sum for the merge.
template <typename T>
__global__ void __launch_bounds__(kDecodeThreads)
decode_partition_kernel(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                        const int32_t* __restrict__ block_tables, int64_t max_blocks_per_seq,
                        const int32_t* __restrict__ context_lens, T* __restrict__ out, float* __restrict__ part_out,
                        float* __restrict__ part_max, float* __restrict__ part_sum, int heads, int kv_heads,
                        int head_dim, int block_size, int partition, float scale, int window) {
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float scores[kPartition];
  __shared__ int64_t slots[kPartition];
  __shared__ float scratch[32];
  const int split = blockIdx.x, h = blockIdx.y, s = blockIdx.z, splits = gridDim.x;
  const int ctx = context_lens[s];
  // This partition's visible positions [start, end): past the sequence's end or wholly before its window there
  // are none, and the merge reads only the partitions that hold some.
  const int start = max(split * partition, detail::first_visible(ctx, window));
  const int end = min(ctx, split * partition + partition);
  if (start >= end) return;
  const int n = end - start;
  const int kv_head = h / (heads / kv_heads);
  const int64_t row = static_cast<int64_t>(kv_heads) * head_dim;
  const int64_t head_off = static_cast<int64_t>(kv_head) * head_dim;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int32_t* table = block_tables + s * max_blocks_per_seq;

  const T* q_row = q + (static_cast<int64_t>(s) * heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) q_s[d] = detail::to_f32(q_row[d]);
  __syncthreads();

  for (int i = warp; i < n; i += warps) {
    const int64_t slot = detail::paged_slot(table, start + i, block_size);
    const T* k = k_cache + slot * row + head_off;
    float dot = 0.0f;
    for (int d = lane; d < head_dim; d += 32) dot += q_s[d] * detail::to_f32(k[d]);
    dot = detail::warp_sum(dot);
    if (lane == 0) {
      scores[i] = dot * scale;
      slots[i] = slot;
    }
  }
  __syncthreads();

  float local_max = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) local_max = fmaxf(local_max, scores[i]);
  const float max_score = detail::block_max(local_max, scratch);
  float local_sum = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(scores[i] - max_score);
    scores[i] = e;
    local_sum += e;
  }
  const float sum = detail::block_sum(local_sum, scratch);  // ends with a barrier: every score is written
  const float inv_sum = 1.0f / sum;

  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int i = 0; i < n; ++i) acc += scores[i] * detail::to_f32(v_cache[slots[i] * row + head_off + d]);
    const int64_t sh = static_cast<int64_t>(s) * heads + h;
    if (splits == 1)
      out[sh * head_dim + d] = detail::from_f32<T>(acc * inv_sum);
    else
      part_out[(sh * splits + split) * head_dim + d] = acc * inv_sum;
  }
  if (splits > 1 && threadIdx.x == 0) {
    const int64_t idx = (static_cast<int64_t>(s) * heads + h) * splits + split;
    part_max[idx] = max_score;
    part_sum[idx] = sum;
  }
}

// Block (head, sequence): out = sum_p w_p out_p / sum_p w_p with w_p = sum_p * exp(max_p - max), over the
// partitions that hold visible positions of this sequence.
template <typename T>
__global__ void decode_merge_kernel(const float* __restrict__ part_out, const float* __restrict__ part_max,
                                    const float* __restrict__ part_sum, const int32_t* __restrict__ context_lens,
                                    T* __restrict__ out, int heads, int head_dim, int partition, int splits,
                                    int window) {
  const int h = blockIdx.x, s = blockIdx.y;
  const int ctx = context_lens[s];
  const int first = detail::first_visible(ctx, window) / partition;
  const int used = min((ctx + partition - 1) / partition, splits);  // splits: from max_context_len
  const int64_t sh = static_cast<int64_t>(s) * heads + h;
  float global_max = -INFINITY;
  for (int p = first; p < used; ++p) global_max = fmaxf(global_max, part_max[sh * splits + p]);
  float total = 0.0f;
  for (int p = first; p < used; ++p)
    total += part_sum[sh * splits + p] * expf(part_max[sh * splits + p] - global_max);
  const float inv_total = 1.0f / total;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int p = first; p < used; ++p) {
      const float w = part_sum[sh * splits + p] * expf(part_max[sh * splits + p] - global_max);
      acc += w * part_out[(sh * splits + p) * head_dim + d];
    }
    out[sh * head_dim + d] = detail::from_f32<T>(acc * inv_total);
  }
}

// Whether `kernel` can run a layout at all (any GQA group): the SIMT kernel takes everything; the other two need
// 16-bit elements and 16-byte aligned q and caches, the tensor-core kernel head_dim 64/80/96/128/256 and the
// grouped one 64/128/256.
template <typename T> bool takes(DecodeKernel kernel, const PagedLayout& layout, bool aligned16) {
  if (kernel == DecodeKernel::simt) return true;
  if (std::is_same_v<T, float> || !aligned16) return false;
  const int64_t d = layout.head_dim;
  if (kernel == DecodeKernel::tensor_core) return d == 64 || d == 80 || d == 96 || d == 128 || d == 256;
  return d == 64 || d == 128 || d == 256;
}

}  // namespace

// The choice of decode kernel, made here only:
// - f32 runs the SIMT kernel: mma.sync has no f32 operands and the grouped kernel unpacks 16-bit pairs.
// - f16/bf16 with a GQA group of 4 or more query heads and head_dim 64, 80, 96, 128 or 256 runs on the tensor cores.
//   Every kernel here reads each K/V element once per block; what differs is the arithmetic per element. On the SIMT
//   cores it is one FMA per query head of the block on each K and each V element, plus unpacking and shuffles, so it
//   grows with the group until the kernel is bound by issue rather than by HBM; one m16n8k16 tile computes 16 heads'
//   products at once, so with 4 or more heads in its 16 rows the tensor-core kernel stays bound by its loads.
//   Head dims are multiples of 16 (the k of the mma tile) whose shared memory fits sm_80 (see the kernel's shape).
// - f16/bf16 with a group below 4 at head_dim 64, 128 or 256 runs the grouped SIMT kernel: an mma tile would be at
//   most 3/16 used, while the SIMT kernel's arithmetic per element is small at such groups and it stages nothing in
//   shared memory. (A head dim of 80 or 96 does not split into power-of-two lanes of 16 bytes, which it needs.)
// - Everything else (other head dims, operands not 16-byte aligned for the 16-byte loads) runs the SIMT kernel.
// The threshold 4 is the design's reasoning, not a measurement: `lattice bench-kernels --decode-kernel NAME` times one
// shape on each kernel (paged_attention_decode's `kernel` argument).
template <typename T>
DecodeKernel paged_attention_decode_kernel(const PagedLayout& layout, bool aligned16) {
  const int64_t group = layout.kv_heads > 0 ? layout.heads / layout.kv_heads : 0;  // 0: refused by the launcher
  if (group >= 4 && takes<T>(DecodeKernel::tensor_core, layout, aligned16)) return DecodeKernel::tensor_core;
  if (takes<T>(DecodeKernel::grouped_simt, layout, aligned16)) return DecodeKernel::grouped_simt;
  return DecodeKernel::simt;
}

const char* decode_kernel_name(DecodeKernel kernel) {
  switch (kernel) {
    case DecodeKernel::simt: return "simt";
    case DecodeKernel::grouped_simt: return "grouped_simt";
    case DecodeKernel::tensor_core: return "tensor_core";
  }
  return "unknown";
}

int64_t paged_attention_decode_partition(int64_t num_seqs) {
  for (const PartitionTier& tier : kTiers)
    if (num_seqs <= tier.max_seqs) return tier.partition;
  return kDecodePartition;
}

size_t paged_attention_decode_workspace_bytes(int64_t num_seqs, const PagedLayout& layout, int64_t max_context_len) {
  // Within a tier the need grows with the batch, so each tier's largest batch up to num_seqs bounds it.
  size_t bytes = 0;
  for (const PartitionTier& tier : kTiers) {
    if (num_seqs < tier.min_seqs) break;
    const int64_t seqs = std::min(num_seqs, tier.max_seqs);
    bytes = std::max(bytes, step_bytes(seqs, layout, num_partitions(max_context_len, tier.partition)));
  }
  return bytes;
}

template <typename T>
void paged_attention_decode(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                            int64_t max_context_len, T* out, const PagedLayout& layout, float scale,
                            int64_t sliding_window, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                            std::optional<DecodeKernel> named) {
  if (num_seqs == 0 || max_context_len == 0) return;
  LATTICE_CHECK(sliding_window >= 0 && sliding_window <= INT32_MAX, "paged_attention_decode: sliding_window ",
                sliding_window, " is outside [0, 2^31)");
  const int window = static_cast<int>(sliding_window);
  LATTICE_CHECK(layout.head_dim <= kMaxHeadDim, "paged_attention_decode: head_dim ", layout.head_dim,
                " is above the supported ", kMaxHeadDim);
  LATTICE_CHECK(layout.kv_heads > 0 && layout.heads % layout.kv_heads == 0, "paged_attention_decode: ",
                layout.heads, " query heads are not a multiple of ", layout.kv_heads, " kv heads");
  LATTICE_CHECK(num_seqs <= 65535 && layout.heads <= 65535, "paged_attention_decode: grid of ", num_seqs,
                " sequences x ", layout.heads, " heads is too large");
  const int64_t partition = paged_attention_decode_partition(num_seqs);
  const int64_t splits = num_partitions(max_context_len, partition);
  const size_t needed = step_bytes(num_seqs, layout, splits);
  LATTICE_CHECK(workspace_bytes >= needed, "paged_attention_decode: workspace of ", workspace_bytes,
                " bytes, needs ", needed);
  float* part_out = static_cast<float*>(workspace);
  const int64_t entries = num_seqs * layout.heads * splits;
  float* part_max = splits > 1 ? part_out + entries * layout.head_dim : nullptr;
  float* part_sum = splits > 1 ? part_max + entries : nullptr;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool aligned16 = aligned(q) && aligned(k_cache) && aligned(v_cache);
  const DecodeKernel kernel = named.value_or(paged_attention_decode_kernel<T>(layout, aligned16));
  LATTICE_CHECK(takes<T>(kernel, layout, aligned16), "paged_attention_decode: the ", decode_kernel_name(kernel),
                " kernel cannot take ", sizeof(T) == 4 ? "f32" : "16-bit", " elements at head_dim ", layout.head_dim,
                aligned16 ? "" : " with operands not 16-byte aligned");
  if constexpr (!std::is_same_v<T, float>) {
    if (kernel == DecodeKernel::tensor_core)
      detail::paged_attention_decode_mma(q, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens,
                                         num_seqs, partition, splits, out, part_out, part_max, part_sum, layout,
                                         scale, window, stream);
    else if (kernel == DecodeKernel::grouped_simt)
      detail::paged_attention_decode_grouped(q, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens,
                                             num_seqs, partition, splits, out, part_out, part_max, part_sum, layout,
                                             scale, window, stream);
  }
  if (kernel == DecodeKernel::simt) {
    const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(layout.heads),
                    static_cast<unsigned>(num_seqs));
    decode_partition_kernel<T><<<grid, kDecodeThreads, 0, stream>>>(
        q, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens, out, part_out, part_max, part_sum,
        static_cast<int>(layout.heads), static_cast<int>(layout.kv_heads), static_cast<int>(layout.head_dim),
        static_cast<int>(layout.block_size), static_cast<int>(partition), scale, window);
    CUDA_CHECK_LAUNCH();
  }
  if (splits > 1) {
    const dim3 merge_grid(static_cast<unsigned>(layout.heads), static_cast<unsigned>(num_seqs));
    decode_merge_kernel<T><<<merge_grid, 128, 0, stream>>>(part_out, part_max, part_sum, context_lens, out,
                                                            static_cast<int>(layout.heads),
                                                            static_cast<int>(layout.head_dim),
                                                            static_cast<int>(partition), static_cast<int>(splits),
                                                            window);
    CUDA_CHECK_LAUNCH();
  }
}

#define LATTICE_INSTANTIATE(T)                                                                                  \
  template DecodeKernel paged_attention_decode_kernel<T>(const PagedLayout&, bool);                             \
  template void paged_attention_decode<T>(const T*, const T*, const T*, const int32_t*, int64_t, const int32_t*, \
                                          int64_t, int64_t, T*, const PagedLayout&, float, int64_t, void*,      \
                                          size_t, cudaStream_t, std::optional<DecodeKernel>);
LATTICE_INSTANTIATE(float)
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
