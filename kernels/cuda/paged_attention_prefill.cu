#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/paged_attention_prefill.cuh"
#include "kernels/cuda/paged_attention_prefill_mma.cuh"
#include "kernels/cuda/paged_attention_prefill_wgmma.cuh"

namespace lattice::kernels::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kQueryTile = kWarps * kRowsPerWarp;  // query rows per block
constexpr int kKeyTile = 32;                        // key positions per tile: one per lane
constexpr int kDimsPerLane = static_cast<int>(kMaxHeadDim) / 32;

size_t shared_bytes(int head_dim) {
  // q tile, K tile (rows padded by one float so lane j reading row j avoids bank conflicts), V tile.
  return sizeof(float) * static_cast<size_t>(kQueryTile * head_dim + kKeyTile * (head_dim + 1) + kKeyTile * head_dim);
}

// The SIMT fallback (f32, head dims the tensor-core kernel does not take). Block (query tile, head, sequence); warp w
// owns query rows w*4 .. w*4+3 of the tile. For each key tile a lane scores one key position against the warp's rows,
// the warp updates each row's running max and sum, and lanes accumulate the output dims lane, lane + 32, ... in
// registers.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
prefill_kernel(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
               const int32_t* __restrict__ block_tables, int64_t max_blocks_per_seq,
               const int32_t* __restrict__ q_begins, const int32_t* __restrict__ q_lens,
               const int32_t* __restrict__ context_lens, T* __restrict__ out, int heads, int kv_heads, int head_dim,
               int block_size, float scale, int window) {
  extern __shared__ float shared[];
  const int tile = blockIdx.x, h = blockIdx.y, s = blockIdx.z;
  const int q_len = q_lens[s];
  const int q0 = tile * kQueryTile;
  if (q0 >= q_len) return;
  const int past = context_lens[s] - q_len;
  const int64_t q_begin = q_begins[s];
  const int kv_head = h / (heads / kv_heads);
  const int64_t row = static_cast<int64_t>(kv_heads) * head_dim;
  const int64_t head_off = static_cast<int64_t>(kv_head) * head_dim;
  const int32_t* table = block_tables + s * max_blocks_per_seq;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int k_stride = head_dim + 1;
  float* q_s = shared;
  float* k_s = q_s + kQueryTile * head_dim;
  float* v_s = k_s + kKeyTile * k_stride;

  for (int idx = threadIdx.x; idx < kQueryTile * head_dim; idx += blockDim.x) {
    const int r = idx / head_dim, d = idx % head_dim;
    const int j = q0 + r;
    q_s[idx] = j < q_len ? detail::to_f32(q[((q_begin + j) * heads + h) * head_dim + d]) : 0.0f;
  }

  float row_max[kRowsPerWarp], row_sum[kRowsPerWarp], acc[kRowsPerWarp][kDimsPerLane];
  int first[kRowsPerWarp], visible[kRowsPerWarp];  // row r sees [first, visible); nothing for rows past the chunk
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int j = q0 + warp * kRowsPerWarp + rr;
    visible[rr] = j < q_len ? past + j + 1 : 0;
    first[rr] = detail::first_visible(visible[rr], window);
    row_max[rr] = -INFINITY;
    row_sum[rr] = 0.0f;
#pragma unroll
    for (int c = 0; c < kDimsPerLane; ++c) acc[rr][c] = 0.0f;
  }

  const int kv_end = past + min(q0 + kQueryTile, q_len);  // the tile's last row sees the latest position
  // The tile's first row sees the earliest position, kv_from; key tiles wholly before it are skipped, and the
  // positions before it in the first tile read as zeros (their blocks may be gone: never follow their entries).
  const int kv_from = detail::first_visible(past + q0 + 1, window);
  for (int k0 = kv_from / kKeyTile * kKeyTile; k0 < kv_end; k0 += kKeyTile) {
    __syncthreads();  // the previous tile is consumed (and, the first time, q_s is written)
    for (int idx = threadIdx.x; idx < kKeyTile * head_dim; idx += blockDim.x) {
      const int jj = idx / head_dim, d = idx % head_dim;
      const int p = k0 + jj;
      float kv = 0.0f, vv = 0.0f;
      if (p >= kv_from && p < kv_end) {
        const int64_t off = detail::paged_slot(table, p, block_size) * row + head_off + d;
        kv = detail::to_f32(k_cache[off]);
        vv = detail::to_f32(v_cache[off]);
      }
      k_s[jj * k_stride + d] = kv;
      v_s[jj * head_dim + d] = vv;
    }
    __syncthreads();

    float dot[kRowsPerWarp] = {};
    const float* q_w = q_s + warp * kRowsPerWarp * head_dim;
    for (int d = 0; d < head_dim; ++d) {
      const float kd = k_s[lane * k_stride + d];
#pragma unroll
      for (int rr = 0; rr < kRowsPerWarp; ++rr) dot[rr] += q_w[rr * head_dim + d] * kd;
    }
    const int p = k0 + lane;
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const float score = p >= first[rr] && p < visible[rr] ? dot[rr] * scale : -INFINITY;
      const float new_max = fmaxf(row_max[rr], detail::warp_max(score));
      if (new_max == -INFINITY) continue;  // nothing visible yet (warp-uniform)
      const float alpha = expf(row_max[rr] - new_max);  // 0 on the first visible tile
      const float weight = expf(score - new_max);       // 0 for masked positions
      row_sum[rr] = row_sum[rr] * alpha + detail::warp_sum(weight);
      row_max[rr] = new_max;
#pragma unroll
      for (int c = 0; c < kDimsPerLane; ++c) acc[rr][c] *= alpha;
      for (int jj = 0; jj < kKeyTile; ++jj) {
        const float w = __shfl_sync(0xffffffffu, weight, jj);
#pragma unroll
        for (int c = 0; c < kDimsPerLane; ++c) {
          const int d = lane + 32 * c;
          if (d < head_dim) acc[rr][c] += w * v_s[jj * head_dim + d];
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    if (visible[rr] == 0) continue;
    const int j = q0 + warp * kRowsPerWarp + rr;
    T* dst = out + ((q_begin + j) * heads + h) * head_dim;
    const float inv_sum = 1.0f / row_sum[rr];
#pragma unroll
    for (int c = 0; c < kDimsPerLane; ++c) {
      const int d = lane + 32 * c;
      if (d < head_dim) dst[d] = detail::from_f32<T>(acc[rr][c] * inv_sum);
    }
  }
}

// LATTICE_ATTENTION_BACKEND (read once): unset or "auto" tries wgmma (sm_90a), then mma.sync, then SIMT;
// "mma" skips wgmma; "simt" takes the SIMT kernel for everything.
enum class PrefillBackend { automatic, mma, simt };

PrefillBackend prefill_backend() {
  static const PrefillBackend backend = [] {
    const char* value = std::getenv("LATTICE_ATTENTION_BACKEND");
    if (value == nullptr || *value == '\0' || std::strcmp(value, "auto") == 0) return PrefillBackend::automatic;
    if (std::strcmp(value, "mma") == 0) return PrefillBackend::mma;
    if (std::strcmp(value, "simt") == 0) return PrefillBackend::simt;
    LATTICE_CHECK(false, "LATTICE_ATTENTION_BACKEND=", value, " is not one of auto, mma, simt");
    return PrefillBackend::automatic;
  }();
  return backend;
}

}  // namespace

namespace detail {

template <typename T>
void paged_attention_prefill_simt(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                  int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                                  const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                                  const PagedLayout& layout, float scale, int window, cudaStream_t stream) {
  const size_t shared = shared_bytes(static_cast<int>(layout.head_dim));
  if (shared > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(prefill_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(shared)));
  const dim3 grid(static_cast<unsigned>((max_q_len + kQueryTile - 1) / kQueryTile),
                  static_cast<unsigned>(layout.heads), static_cast<unsigned>(num_seqs));
  prefill_kernel<T><<<grid, kWarps * 32, shared, stream>>>(
      q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins, q_lens, context_lens, out,
      static_cast<int>(layout.heads), static_cast<int>(layout.kv_heads), static_cast<int>(layout.head_dim),
      static_cast<int>(layout.block_size), scale, window);
  CUDA_CHECK_LAUNCH();
}

}  // namespace detail

template <typename T>
void paged_attention_prefill(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                             int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                             const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                             const PagedLayout& layout, float scale, int64_t sliding_window, cudaStream_t stream) {
  if (num_seqs == 0 || max_q_len == 0) return;
  LATTICE_CHECK(sliding_window >= 0 && sliding_window <= INT32_MAX, "paged_attention_prefill: sliding_window ",
                sliding_window, " is outside [0, 2^31)");
  const int window = static_cast<int>(sliding_window);
  LATTICE_CHECK(layout.head_dim > 0 && layout.head_dim <= kMaxHeadDim, "paged_attention_prefill: head_dim ",
                layout.head_dim, " is outside the supported (0, ", kMaxHeadDim, "]");
  LATTICE_CHECK(layout.kv_heads > 0 && layout.heads % layout.kv_heads == 0, "paged_attention_prefill: ",
                layout.heads, " query heads are not a multiple of ", layout.kv_heads, " kv heads");
  LATTICE_CHECK(num_seqs <= 65535 && layout.heads <= 65535, "paged_attention_prefill: grid of ", num_seqs,
                " sequences x ", layout.heads, " heads is too large");
  if constexpr (!std::is_same_v<T, float>) {
    const PrefillBackend backend = prefill_backend();
    if (backend == PrefillBackend::automatic &&
        detail::paged_attention_prefill_wgmma(q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins,
                                              q_lens, context_lens, num_seqs, max_q_len, out, layout, scale, window,
                                              stream))
      return;
    if (backend != PrefillBackend::simt &&
        detail::paged_attention_prefill_mma(q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins, q_lens,
                                            context_lens, num_seqs, max_q_len, out, layout, scale, window, stream))
      return;
  }
  detail::paged_attention_prefill_simt(q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins, q_lens,
                                       context_lens, num_seqs, max_q_len, out, layout, scale, window, stream);
}

#define LATTICE_INSTANTIATE(T)                                                                                 \
  template void paged_attention_prefill<T>(const T*, const T*, const T*, const int32_t*, int64_t, const int32_t*, \
                                           const int32_t*, const int32_t*, int64_t, int64_t, T*, const PagedLayout&, \
                                           float, int64_t, cudaStream_t);                      \
  template void detail::paged_attention_prefill_simt<T>(const T*, const T*, const T*, const int32_t*, int64_t,      \
                                                        const int32_t*, const int32_t*, const int32_t*, int64_t,   \
                                                        int64_t, T*, const PagedLayout&, float, int, cudaStream_t);
LATTICE_INSTANTIATE(float)
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
