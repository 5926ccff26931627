// Hopper prefill kernel. A block (query tile, KV head, sequence) owns kRows = 128 packed rows of one sequence,
// packed as in the mma.sync kernel (row r: token r / group, query head kv_head * group + r % group), so the
// group's query heads share every K/V tile. Warpgroup 0 is the producer: it copies K and V tiles of kKeys
// positions from the paged cache into shared memory with cp.async (zero-filling positions outside what the
// tile's rows see), in the 128-byte-swizzled layout wgmma reads, two stages each for K and V, and each copy
// arrives on a "full" mbarrier when it lands. Warpgroups 1 and 2 (64 rows each) compute: S = Q K^T on wgmma with
// both operands in shared memory, then O += P V with P (the softmax weights rounded to T) from registers and V
// read transposed. Their loop overlaps the softmax of tile j with the P V product of tile j - 1 (issued, not yet
// waited on); a consumer releases a K or V stage through an "empty" mbarrier as soon as the wgmma reading it
// has completed. Causal tiles wholly above the diagonal, or wholly before a sliding window, are never loaded;
// the mask is applied only on tiles that cross an edge.
//
// Why cp.async rather than TMA: a 128-position tile spans 8 (block 16) or 4 (block 32) cache blocks at
// table-given addresses, i.e. that many TMA boxes per K and V tile, each needing a tensor map over the whole
// cache (built through the driver API, which this library does not link); and the positions a tile's rows do
// not see must read as zeros, not as whatever a freed or poisoned block holds (a zero weight times a NaN in V
// is NaN). cp.async's zero-fill does both per 16 bytes.
#include <cuda_runtime.h>

#include <array>
#include <atomic>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/mma_sm80.cuh"
#include "kernels/cuda/paged_attention_prefill_wgmma.cuh"
#include "kernels/cuda/prefill_launch.cuh"
#include "kernels/cuda/wgmma_ops_sm90.cuh"
#include "kernels/cuda/wgmma_sm90.cuh"

namespace lattice::kernels::cuda::detail {

namespace {

constexpr int kConsumers = 2;                       // consumer warpgroups, 64 packed rows each
constexpr int kRows = 64 * kConsumers;              // packed rows per block
constexpr int kThreads = 128 * (1 + kConsumers);    // warpgroup 0 loads, the others compute
constexpr int kStages = 2;                          // shared-memory stages of K, and of V

template <int D> struct WgmmaShape {
  static constexpr int kKeys = D <= 128 ? 128 : 64;  // positions per K/V tile (256-wide heads: registers)
  static constexpr int kQBytes = 64 * D * 2;         // one consumer's Q rows
  static constexpr int kTileBytes = kKeys * D * 2;   // one K or V stage
  // 1024 bytes of slack to align the swizzled operands, Q of both consumers, K and V stages, 4 x kStages barriers.
  static constexpr size_t kSharedBytes = 1024 + kConsumers * kQBytes + 2 * kStages * kTileBytes + 4 * kStages * 8;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Registers per thread after the split: 128 x 56 + 256 x 224 <= 64K. The consumers of head_dim 256 hold O and S
// (128 + 32 f32) and P (16); ptxas -v (CUDA 13.0) reports 8 bytes spilled there (none at 64 and 128).
constexpr int kProducerRegisters = 56, kConsumerRegisters = 224;

// S (64 x N) = Q (64 x D) K^T: D / 16 k-steps over both K-major operands.
template <typename T, int N, int D>
__device__ __forceinline__ void issue_scores(float (&s)[N / 2], uint32_t q_address, uint32_t k_address) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint64_t a = sw128_descriptor(sw128_k_major_step(q_address, 64, kk), 16);
    const uint64_t b = sw128_descriptor(sw128_k_major_step(k_address, N, kk), 16);
    if constexpr (N == 64)
      wgmma_ss_n64<T>(s, a, b, kk > 0);
    else
      wgmma_ss_n128<T>(s, a, b, kk > 0);
  }
}

// O (64 x D) += P (64 x N, registers) V (N x D, stored key-major, read MN-major): N / 16 k-steps of 16 keys.
template <typename T, int N, int D>
__device__ __forceinline__ void issue_values(float (&o)[D / 2], const uint32_t (&p)[N / 16][4], uint32_t v_address) {
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk) {
    const uint64_t b = sw128_descriptor(sw128_mn_major_step(v_address, kk), sw128_panel_bytes(N));
    if constexpr (D == 64)
      wgmma_rs_n64_tb<T>(o, p[kk], b);
    else if constexpr (D == 128)
      wgmma_rs_n128_tb<T>(o, p[kk], b);
    else
      wgmma_rs_n256_tb<T>(o, p[kk], b);
  }
}
#endif

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 1)
prefill_wgmma_kernel(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                     const int32_t* __restrict__ block_tables, int64_t max_blocks_per_seq,
                     const int32_t* __restrict__ q_begins, const int32_t* __restrict__ q_lens,
                     const int32_t* __restrict__ context_lens, T* __restrict__ out, int heads, int kv_heads,
                     int block_size, float scale_log2, int window) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Shape = WgmmaShape<D>;
  constexpr int N = Shape::kKeys, C = D / 8;  // C: 16-byte chunks per row
  extern __shared__ unsigned char shared_raw[];
  const uint32_t raw_address = shared_address(shared_raw);
  unsigned char* base = shared_raw + ((1024 - raw_address % 1024) % 1024);  // swizzle atoms are 1024-aligned
  unsigned char* q_s = base;
  unsigned char* k_s = q_s + kConsumers * Shape::kQBytes;
  unsigned char* v_s = k_s + kStages * Shape::kTileBytes;
  uint64_t* bars = reinterpret_cast<uint64_t*>(v_s + kStages * Shape::kTileBytes);
  uint64_t* k_full = bars;
  uint64_t* k_empty = bars + kStages;
  uint64_t* v_full = bars + 2 * kStages;
  uint64_t* v_empty = bars + 3 * kStages;

  const int tile = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // the longest causal extents start first
  const int kv_head = blockIdx.y, s = blockIdx.z;
  const int group = heads / kv_heads;
  const int q_len = q_lens[s];
  const int rows = q_len * group;
  const int m0 = tile * kRows;
  if (m0 >= rows) return;  // block-uniform, before any barrier
  const int past = context_lens[s] - q_len;
  const int64_t q_begin = q_begins[s];
  const int kv_end = past + (min(m0 + kRows, rows) - 1) / group + 1;  // the tile's last row sees [.., kv_end)
  const int all_see = past + m0 / group + 1;                          // its first row sees [.., all_see)
  const int all_from = first_visible(kv_end, window);                 // every row sees [all_from, all_see)
  const int kv_from = first_visible(all_see, window), kv_begin = kv_from / N * N;
  const int tiles = (kv_end - kv_begin + N - 1) / N;  // >= 1: kv_from < kv_end

  if (threadIdx.x == 0) {
    for (int i = 0; i < kStages; ++i) {
      mbarrier_init(&k_full[i], 128);  // every producer thread's copies
      mbarrier_init(&v_full[i], 128);
      mbarrier_init(&k_empty[i], 128 * kConsumers);  // every consumer thread
      mbarrier_init(&v_empty[i], 128 * kConsumers);
    }
  }
  __syncthreads();

  const int warpgroup = threadIdx.x / 128, lt = threadIdx.x % 128;
  if (warpgroup == 0) {  // producer
    release_registers<kProducerRegisters>();
    const int64_t kv_row = static_cast<int64_t>(kv_heads) * D;
    const T* k_head = k_cache + static_cast<int64_t>(kv_head) * D;
    const T* v_head = v_cache + static_cast<int64_t>(kv_head) * D;
    const int32_t* table = block_tables + s * max_blocks_per_seq;
    // Zero rows outside [kv_from, kv_end): a masked weight times a zero V stays 0, and the blocks before kv_from
    // may be gone, so their table entries are never followed.
    auto load = [&](const T* head, unsigned char* stage, int n0) {
#pragma unroll 2
      for (int idx = lt; idx < N * C; idx += 128) {
        const int r = idx / C, c = idx % C, p = n0 + r;
        const bool valid = p >= kv_from && p < kv_end;
        const int64_t off = valid ? paged_slot(table, p, block_size) * kv_row + c * 8 : 0;
        cp_async_16(stage + sw128_offset(r, c * 8, N), head + off, valid);
      }
    };
    for (int it = 0; it < tiles; ++it) {
      const int stage = it % kStages, use = it / kStages, n0 = kv_begin + it * N;
      if (use > 0) mbarrier_wait(&k_empty[stage], (use - 1) & 1);
      load(k_head, k_s + stage * Shape::kTileBytes, n0);
      mbarrier_arrive_on_cp_async(&k_full[stage]);
      if (use > 0) mbarrier_wait(&v_empty[stage], (use - 1) & 1);
      load(v_head, v_s + stage * Shape::kTileBytes, n0);
      mbarrier_arrive_on_cp_async(&v_full[stage]);
    }
    cp_async_commit();   // the copies above belong to no group yet; wait_group waits on groups only
    cp_async_wait<0>();  // leave no copy in flight behind an exiting thread
    return;
  }

  claim_registers<kConsumerRegisters>();
  const int consumer = warpgroup - 1, warp = lt / 32, lane = lt % 32, g = lane / 4, t = lane % 4;
  unsigned char* my_q = q_s + consumer * Shape::kQBytes;
  const int row0 = m0 + consumer * 64;  // this warpgroup's first packed row
  for (int idx = lt; idx < 64 * C; idx += 128) {
    const int r = idx / C, c = idx % C, packed = row0 + r;
    const bool valid = packed < rows;
    const T* src = q;
    if (valid) {
      const int64_t token = q_begin + packed / group;
      src = q + (token * heads + static_cast<int64_t>(kv_head) * group + packed % group) * D + c * 8;
    }
    cp_async_16(my_q + sw128_offset(r, c * 8, 64), src, valid);
  }
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async();
  named_barrier_sync(1 + consumer, 128);  // the warpgroup's Q is in shared memory for its wgmma

  int from[2], limit[2];  // this thread's two rows (g, g + 8 of its warp) see [from, limit); nothing past the chunk
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int packed = row0 + warp * 16 + g + 8 * i;
    limit[i] = packed < rows ? past + packed / group + 1 : 0;
    from[i] = first_visible(limit[i], window);
  }
  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  float sc[N / 2];
  uint32_t pw[N / 16][4];  // P as the A operand of P V, per 16-key step
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // row_sum: this thread's columns only
  float alpha[2];
  const uint32_t q_address = shared_address(my_q);

  // Masks tile n0's scores (registers sc: element 4 * nb + e is row g + 8 * (e / 2), key n0 + 8 nb + 2t + e % 2),
  // updates the running max and sum, turns sc into the weights exp2(s - max) and sets alpha, the factor that
  // rescales what O holds.
  auto softmax = [&](int n0) {
    const bool crosses = n0 + N > all_see || n0 < all_from;  // some position here is hidden from some row
#pragma unroll
    for (int nb = 0; nb < N / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int p = n0 + nb * 8 + 2 * t + e % 2;
        const bool seen = p >= from[e / 2] && p < limit[e / 2];
        sc[4 * nb + e] = !crosses || seen ? sc[4 * nb + e] * scale_log2 : -INFINITY;
      }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = row_max[i];
#pragma unroll
      for (int nb = 0; nb < N / 8; ++nb) mx = fmaxf(mx, fmaxf(sc[4 * nb + 2 * i], sc[4 * nb + 2 * i + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));  // the quad holds the row
      const float base = mx == -INFINITY ? 0.0f : mx;         // a row that sees nothing yet: weights 0, no NaN
      alpha[i] = exp2f(row_max[i] - base);
      row_max[i] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int nb = 0; nb < N / 8; ++nb)
#pragma unroll
        for (int e = 2 * i; e < 2 * i + 2; ++e) {
          sc[4 * nb + e] = exp2f(sc[4 * nb + e] - base);
          sum += sc[4 * nb + e];
        }
      row_sum[i] = row_sum[i] * alpha[i] + sum;
    }
  };
  auto to_operand = [&] {
#pragma unroll
    for (int kk = 0; kk < N / 16; ++kk) {
      pw[kk][0] = pack2<T>(sc[8 * kk + 0], sc[8 * kk + 1]);
      pw[kk][1] = pack2<T>(sc[8 * kk + 2], sc[8 * kk + 3]);
      pw[kk][2] = pack2<T>(sc[8 * kk + 4], sc[8 * kk + 5]);
      pw[kk][3] = pack2<T>(sc[8 * kk + 6], sc[8 * kk + 7]);
    }
  };
  auto k_address = [&](int stage) { return shared_address(k_s + stage * Shape::kTileBytes); };
  auto v_address = [&](int stage) { return shared_address(v_s + stage * Shape::kTileBytes); };

  // Tile 0: scores, softmax (O is zero: no rescale).
  mbarrier_wait(&k_full[0], 0);
  fence_proxy_async();
  fence_registers(o);
  wgmma_fence();
  issue_scores<T, N, D>(sc, q_address, k_address(0));
  wgmma_commit();
  wgmma_wait<0>();
  fence_registers(sc);
  mbarrier_arrive(&k_empty[0]);
  softmax(kv_begin);
  to_operand();

  for (int j = 1; j < tiles; ++j) {
    const int stage = j % kStages, prev = (j - 1) % kStages;
    mbarrier_wait(&k_full[stage], (j / kStages) & 1);
    fence_proxy_async();
    fence_registers(o);  // the rescale and the new P are written before the fence, not moved past it
    fence_registers(pw);
    wgmma_fence();  // sc, pw and o were written by ordinary instructions since the last wgmma
    issue_scores<T, N, D>(sc, q_address, k_address(stage));
    wgmma_commit();
    mbarrier_wait(&v_full[prev], ((j - 1) / kStages) & 1);
    fence_proxy_async();
    wgmma_fence();  // orders nothing new; without it ptxas injects one here (info C7519)
    issue_values<T, N, D>(o, pw, v_address(prev));
    wgmma_commit();
    wgmma_wait<1>();  // the scores of tile j are in; P V of tile j - 1 may still run
    fence_registers(sc);
    mbarrier_arrive(&k_empty[stage]);
    softmax(kv_begin + j * N);
    wgmma_wait<0>();
    fence_registers(o);
    fence_registers(pw);
    mbarrier_arrive(&v_empty[prev]);
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[4 * nb + e] *= alpha[e / 2];
    to_operand();
  }
  const int last = (tiles - 1) % kStages;
  mbarrier_wait(&v_full[last], ((tiles - 1) / kStages) & 1);
  fence_proxy_async();
  fence_registers(o);
  fence_registers(pw);
  wgmma_fence();
  issue_values<T, N, D>(o, pw, v_address(last));
  wgmma_commit();
  wgmma_wait<0>();
  fence_registers(o);

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = row_sum[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int packed = row0 + warp * 16 + g + 8 * i;
    if (packed >= rows) continue;
    const float inv_sum = 1.0f / sum;
    const int64_t token = q_begin + packed / group;
    T* dst = out + (token * heads + static_cast<int64_t>(kv_head) * group + packed % group) * D + 2 * t;
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb)
      *reinterpret_cast<uint32_t*>(dst + nb * 8) = pack2<T>(o[4 * nb + 2 * i] * inv_sum, o[4 * nb + 2 * i + 1] * inv_sum);
  }
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched: the host launches it only where the sm_90a code exists
#endif
}

template <typename T, int D>
void launch(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables, int64_t max_blocks_per_seq,
            const int32_t* q_begins, const int32_t* q_lens, const int32_t* context_lens, int64_t num_seqs,
            int64_t max_q_len, T* out, const PagedLayout& layout, float scale, int window, cudaStream_t stream) {
  launch_prefill<T>(prefill_wgmma_kernel<T, D>, kThreads, kRows, WgmmaShape<D>::kSharedBytes, q, k_cache, v_cache,
                    block_tables, max_blocks_per_seq, q_begins, q_lens, context_lens, num_seqs, max_q_len, out,
                    layout, scale, window, stream);
}

}  // namespace

#if defined(LATTICE_CUDA_SM90A)
// Queries `device` (the current one): compute capability 9.0 and the sm_90a cubin picked for the kernel.
bool device_runs_wgmma(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();  // clear the (non-sticky) error: an unusable device runs no wgmma
    return false;
  }
  if (major != 9 || minor != 0) return false;
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, prefill_wgmma_kernel<__nv_bfloat16, 128>) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attributes.binaryVersion == 90;  // not, say, a plain sm_90 cubin without the wgmma code
}
#endif

bool paged_attention_prefill_wgmma_available() {
#if defined(LATTICE_CUDA_SM90A)
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  // Asked before every prefill launch: the answer per device is cached (0 unknown, 1 no, 2 yes).
  static std::array<std::atomic<int>, 64> cached{};
  if (device < 0 || device >= static_cast<int>(cached.size())) return device_runs_wgmma(device);
  int answer = cached[device].load(std::memory_order_relaxed);
  if (answer == 0) {
    answer = device_runs_wgmma(device) ? 2 : 1;
    cached[device].store(answer, std::memory_order_relaxed);
  }
  return answer == 2;
#else
  return false;
#endif
}

template <typename T>
bool paged_attention_prefill_wgmma(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                   int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                                   const int32_t* context_lens, int64_t num_seqs, int64_t max_q_len, T* out,
                                   const PagedLayout& layout, float scale, int window, cudaStream_t stream) {
  if (!prefill_operands_aligned(q, k_cache, v_cache, out)) return false;
  if (layout.head_dim != 64 && layout.head_dim != 128 && layout.head_dim != 256) return false;
  if (!paged_attention_prefill_wgmma_available()) return false;
  switch (layout.head_dim) {
#define LATTICE_HEAD_DIM_CASE(D)                                                                                   \
  case D:                                                                                                          \
    launch<T, D>(q, k_cache, v_cache, block_tables, max_blocks_per_seq, q_begins, q_lens, context_lens, num_seqs, \
                 max_q_len, out, layout, scale, window, stream);                                                   \
    return true;
    LATTICE_HEAD_DIM_CASE(64)
    LATTICE_HEAD_DIM_CASE(128)
    LATTICE_HEAD_DIM_CASE(256)
#undef LATTICE_HEAD_DIM_CASE
    default:
      return false;
  }
}

template bool paged_attention_prefill_wgmma<__half>(const __half*, const __half*, const __half*, const int32_t*,
                                                    int64_t, const int32_t*, const int32_t*, const int32_t*, int64_t,
                                                    int64_t, __half*, const PagedLayout&, float, int, cudaStream_t);
template bool paged_attention_prefill_wgmma<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                           const __nv_bfloat16*, const int32_t*, int64_t,
                                                           const int32_t*, const int32_t*, const int32_t*, int64_t,
                                                           int64_t, __nv_bfloat16*, const PagedLayout&, float, int,
                                                           cudaStream_t);

}  // namespace lattice::kernels::cuda::detail
