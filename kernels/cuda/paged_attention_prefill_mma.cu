// Tensor-core prefill kernel. A block (query tile, KV head, sequence) owns kRows packed rows of one sequence:
// packed row r is token r / group of the chunk and query head kv_head * group + r % group, so the group's
// query heads share every K/V tile the block loads. Eight warps take 16 rows each. Per K/V tile of kKeys
// positions (cp.async into shared memory, double-buffered): S = Q K^T on mma.sync, the causal mask on the
// tiles that cross the diagonal, an online softmax in registers (base-2, scale folded in), O += P V with P
// rounded to T as the A operand. Tiles wholly above the diagonal, or wholly before a sliding window, are never
// loaded.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/mma_sm80.cuh"
#include "kernels/cuda/paged_attention_prefill_mma.cuh"
#include "kernels/cuda/prefill_launch.cuh"

namespace lattice::kernels::cuda::detail {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16 * kWarps;  // packed (token, head) rows per block: 16 per warp

template <typename T, int D> struct PrefillShape {
  static constexpr int kKeys = D <= 128 ? 64 : 32;  // positions per K/V tile (256-wide heads: registers)
  static constexpr int kStride = D + 8;              // shared row in elements: 16 bytes of padding per row keeps
                                                     // the 8 rows of every ldmatrix on distinct banks
  static constexpr int kChunks = D / 8;              // 16-byte pieces per row
  // Q tile, then two K tiles, then two V tiles.
  static constexpr size_t kSharedBytes = sizeof(T) * kStride * (kRows + 4 * kKeys);
};

template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
prefill_mma_kernel(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                   const int32_t* __restrict__ block_tables, int64_t max_blocks_per_seq,
                   const int32_t* __restrict__ q_begins, const int32_t* __restrict__ q_lens,
                   const int32_t* __restrict__ context_lens, T* __restrict__ out, int heads, int kv_heads,
                   int block_size, float scale_log2, int window) {
  using Shape = PrefillShape<T, D>;
  constexpr int N = Shape::kKeys, S = Shape::kStride, C = Shape::kChunks;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* q_s = reinterpret_cast<T*>(shared_raw);
  T* k_s = q_s + kRows * S;
  T* v_s = k_s + 2 * N * S;

  const int tile = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // the longest causal extents start first
  const int kv_head = blockIdx.y, s = blockIdx.z;
  const int group = heads / kv_heads;
  const int q_len = q_lens[s];
  const int rows = q_len * group;
  const int m0 = tile * kRows;
  if (m0 >= rows) return;
  const int past = context_lens[s] - q_len;
  const int64_t q_begin = q_begins[s];
  const int64_t kv_row = static_cast<int64_t>(kv_heads) * D;
  const T* k_head = k_cache + static_cast<int64_t>(kv_head) * D;
  const T* v_head = v_cache + static_cast<int64_t>(kv_head) * D;
  const int32_t* table = block_tables + s * max_blocks_per_seq;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int kv_end = past + (min(m0 + kRows, rows) - 1) / group + 1;  // the tile's last row sees [.., kv_end)
  const int all_see = past + m0 / group + 1;                          // its first row sees [.., all_see)
  // Every row of the tile sees [all_from, all_see); the first row sees from kv_from, and the K/V tiles from
  // kv_from's hold every position a row sees.
  const int all_from = first_visible(kv_end, window);
  const int kv_from = first_visible(all_see, window), kv_begin = kv_from / N * N;

  for (int idx = tid; idx < kRows * C; idx += kThreads) {
    const int r = idx / C, c = idx % C, packed = m0 + r;
    const bool valid = packed < rows;
    const T* src = q;
    if (valid) {
      const int64_t token = q_begin + packed / group;
      src = q + (token * heads + static_cast<int64_t>(kv_head) * group + packed % group) * D + c * 8;
    }
    cp_async_16(q_s + r * S + c * 8, src, valid);
  }
  auto load_kv = [&](int n0, int buf) {
    for (int idx = tid; idx < N * C; idx += kThreads) {
      const int r = idx / C, c = idx % C, p = n0 + r;
      // Zero rows outside [kv_from, kv_end) (a masked weight times a zero V stays 0); the blocks before kv_from may
      // be gone, so their table entries are never followed.
      const bool valid = p >= kv_from && p < kv_end;
      const int64_t off = valid ? paged_slot(table, p, block_size) * kv_row + c * 8 : 0;
      cp_async_16(k_s + (buf * N + r) * S + c * 8, k_head + off, valid);
      cp_async_16(v_s + (buf * N + r) * S + c * 8, v_head + off, valid);
    }
  };
  load_kv(kv_begin, 0);
  cp_async_commit();

  const int g = lane / 4, t = lane % 4;
  const bool warp_has_rows = m0 + warp * 16 < rows;
  int from[2], limit[2];  // this thread's two rows (g, g + 8) see [from, limit); nothing for rows past the chunk
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int packed = m0 + warp * 16 + g + 8 * i;
    limit[i] = packed < rows ? past + packed / group + 1 : 0;
    from[i] = first_visible(limit[i], window);
  }
  float o[D / 8][4];
#pragma unroll
  for (int nb = 0; nb < D / 8; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // row_sum: this thread's columns only

  const int tiles = (kv_end - kv_begin + N - 1) / N;
  for (int it = 0; it < tiles; ++it) {
    const int n0 = kv_begin + it * N, buf = it % 2;
    if (it + 1 < tiles) load_kv(n0 + N, buf ^ 1);  // its buffer was released by the barrier ending it - 1
    cp_async_commit();
    cp_async_wait<1>();  // tile it (and Q) landed for this thread
    __syncthreads();     // ... and for every thread
    if (warp_has_rows) {
      const T* k_tile = k_s + buf * N * S;
      const T* v_tile = v_s + buf * N * S;
      float sc[N / 8][4];
#pragma unroll
      for (int nb = 0; nb < N / 8; ++nb) sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, q_s + (warp * 16 + lane % 16) * S + kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int nb = 0; nb < N / 8; nb += 2) {
          uint32_t b[4];  // keys nb*8.. (dims kk*16.. and +8), then keys nb*8+8..
          ldmatrix_x4(b, k_tile + (nb * 8 + lane % 8 + (lane / 16) * 8) * S + kk * 16 + ((lane / 8) % 2) * 8);
          mma_16816<T>(sc[nb], a, b[0], b[1]);
          mma_16816<T>(sc[nb + 1], a, b[2], b[3]);
        }
      }
      const bool crosses = n0 + N > all_see || n0 < all_from;  // some position here is hidden from some row
#pragma unroll
      for (int nb = 0; nb < N / 8; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int p = n0 + nb * 8 + 2 * t + e % 2;
          const bool seen = p >= from[e / 2] && p < limit[e / 2];
          sc[nb][e] = !crosses || seen ? sc[nb][e] * scale_log2 : -INFINITY;
        }
      online_softmax_tile(sc, o, row_max, row_sum);
#pragma unroll
      for (int kk = 0; kk < N / 16; ++kk) {
        const uint32_t a[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]), pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                               pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                               pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
        for (int nb = 0; nb < D / 8; nb += 2) {
          uint32_t b[4];  // dims nb*8.. (keys kk*16.. and +8), then dims nb*8+8..
          ldmatrix_x4_trans(b, v_tile + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * S + nb * 8 + (lane / 16) * 8);
          mma_16816<T>(o[nb], a, b[0], b[1]);
          mma_16816<T>(o[nb + 1], a, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with buffer `buf` before iteration it + 1 refills it
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = row_sum[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int packed = m0 + warp * 16 + g + 8 * i;
    if (packed >= rows) continue;
    const float inv_sum = 1.0f / sum;
    const int64_t token = q_begin + packed / group;
    T* dst = out + (token * heads + static_cast<int64_t>(kv_head) * group + packed % group) * D + 2 * t;
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb)
      *reinterpret_cast<uint32_t*>(dst + nb * 8) = pack2<T>(o[nb][2 * i] * inv_sum, o[nb][2 * i + 1] * inv_sum);
  }
}

template <typename T, int D>
void launch(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables, int64_t max_blocks_per_seq,
            const int32_t* q_begins, const int32_t* q_lens, const int32_t* context_lens, int64_t num_seqs,
            int64_t max_q_len, T* out, const PagedLayout& layout, float scale, int window, cudaStream_t stream) {
  launch_prefill<T>(prefill_mma_kernel<T, D>, kThreads, kRows, PrefillShape<T, D>::kSharedBytes, q, k_cache, v_cache,
                    block_tables, max_blocks_per_seq, q_begins, q_lens, context_lens, num_seqs, max_q_len, out,
                    layout, scale, window, stream);
}

}  // namespace

template <typename T>
bool paged_attention_prefill_mma(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                 int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                                 const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                                 const PagedLayout& layout, float scale, int window, cudaStream_t stream) {
  if (!prefill_operands_aligned(q, k_cache, v_cache, out)) return false;
  switch (layout.head_dim) {
#define LATTICE_HEAD_DIM_CASE(D)                                                                                   \
  case D:                                                                                                          \
    launch<T, D>(q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins, q_lens, context_lens, num_seqs, \
                 max_q_len, out, layout, scale, window, stream);                                                   \
    return true;
    LATTICE_HEAD_DIM_CASE(64)
    LATTICE_HEAD_DIM_CASE(80)
    LATTICE_HEAD_DIM_CASE(96)
    LATTICE_HEAD_DIM_CASE(128)
    LATTICE_HEAD_DIM_CASE(256)
#undef LATTICE_HEAD_DIM_CASE
    default:
      return false;
  }
}

template bool paged_attention_prefill_mma<__half>(const __half*, const __half*, const __half*, const int32_t*, int64_t,
                                                  const int32_t*, const int32_t*, const int32_t*, int64_t, int64_t,
                                                  __half*, const PagedLayout&, float, int, cudaStream_t);
template bool paged_attention_prefill_mma<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                         const __nv_bfloat16*, const int32_t*, int64_t,
                                                         const int32_t*, const int32_t*, const int32_t*, int64_t,
                                                         int64_t, __nv_bfloat16*, const PagedLayout&, float, int,
                                                         cudaStream_t);

}  // namespace lattice::kernels::cuda::detail
