// Tensor-core decode kernel. Block (partition, KV head x chunk of 16 query heads, sequence): the chunk's query rows
// are the 16 rows of the A operand (zero rows pad a smaller group). K/V tiles of kKeys positions come from the paged
// cache by cp.async into shared memory, double-buffered; each warp owns 16 positions of every tile and runs, in
// registers, S = Q K^T (mma.sync m16n8k16), the scale and the tail mask, an online softmax (f32, base 2) and
// O += P V with P rounded to T as the A operand. At the end the warps' (max, sum, O) are merged through shared memory
// and the block writes the output (one partition) or its partial result for paged_attention_decode's merge. A
// decode row sees every position of [first visible, context), so only the last tile needs a mask.
//
// Registers (ptxas -v, CUDA 13.0: no spills on sm_80 or sm_90a), shared memory and the occupancy they allow per head
// dim: docs/cuda.md, "Decode attention".
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_args.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/mma_sm80.cuh"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_decode_mma.cuh"

namespace lattice::kernels::cuda::detail {

namespace {

constexpr int kRows = 16;      // query heads per block: the M of one mma tile
constexpr int kWarpKeys = 16;  // positions per warp per tile: the K of the P V product
constexpr float kLn2 = 0.6931471805599453f;

template <typename T, int D> struct DecodeMmaShape {
  // 4 warps (64-position tiles) up to head_dim 128, 2 warps (32 positions) at 256: a stage of K plus V is then at
  // most 32 KiB and the block's shared memory stays under 100 KiB at every head dim.
  static constexpr int kWarps = D <= 128 ? 4 : 2;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kKeys = kWarps * kWarpKeys;  // positions per K/V tile
  static constexpr int kStride = D + 8;  // shared row in elements: 16 bytes of padding per row keeps the 8 rows of
                                         // every ldmatrix on distinct banks
  static constexpr int kChunks = D / 8;  // 16-byte pieces per row
  static constexpr size_t kTileBytes = sizeof(T) * kKeys * kStride;
  // Q, then two K tiles, then two V tiles, then the cache slots of the partition's positions (int32: a slot is below
  // 2^31 because even a 64-byte cache row times 2^31 slots would be larger than any GPU's memory).
  static constexpr size_t kSlotsOffset = sizeof(T) * kRows * kStride + 4 * kTileBytes;
  static constexpr size_t kSharedBytes = kSlotsOffset + sizeof(int32_t) * kDecodePartition;
  // The merge of the warps reuses the K/V tiles: [kWarps][kRows][D] f32 outputs, [kWarps][kRows] maxima and
  // [kWarps][kRows] sums, then [kRows] reciprocal totals.
  static_assert(sizeof(float) * (kWarps * kRows * (D + 2) + kRows) <= 4 * kTileBytes);
  static_assert(D % 16 == 0);
};


template <typename T, int D>
__global__ void __launch_bounds__(DecodeMmaShape<T, D>::kThreads) decode_mma_kernel(const DecodeArgs<T> a) {
  using Shape = DecodeMmaShape<T, D>;
  constexpr int kWarps = Shape::kWarps, kThreads = Shape::kThreads, N = Shape::kKeys, S = Shape::kStride,
                C = Shape::kChunks;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* q_s = reinterpret_cast<T*>(shared_raw);
  T* k_s = q_s + kRows * S;
  T* v_s = k_s + 2 * N * S;
  int32_t* slots = reinterpret_cast<int32_t*>(shared_raw + Shape::kSlotsOffset);  // [end - start]

  const int split = blockIdx.x, s = blockIdx.z, splits = gridDim.x;
  const int ctx = a.context_lens[s];
  // This partition's visible positions [start, end): none past the sequence's end (graph-padded bounds) or wholly
  // before its window, and the merge reads only the partitions that hold some.
  const int start = max(split * a.partition, first_visible(ctx, a.window));
  const int end = min(ctx, split * a.partition + a.partition);
  if (start >= end) return;
  const int group = a.heads / a.kv_heads, chunks = (group + kRows - 1) / kRows;
  const int kv_head = blockIdx.y / chunks;
  const int h0 = kv_head * group + (blockIdx.y % chunks) * kRows;  // the block's first query head
  const int nh = min(kRows, kv_head * group + group - h0);         // its query heads
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t kv_row = static_cast<int64_t>(a.kv_heads) * D;
  const T* k_head = a.k_cache + static_cast<int64_t>(kv_head) * D;
  const T* v_head = a.v_cache + static_cast<int64_t>(kv_head) * D;
  const int32_t* table = a.block_tables + s * a.max_blocks_per_seq;
  const int64_t first_row = static_cast<int64_t>(s) * a.heads + h0;  // row of head h0 in q, out and the partials

  for (int idx = tid; idx < kRows * C; idx += kThreads) {
    const int r = idx / C, c = idx % C;
    const bool valid = r < nh;  // rows past the group are zero: their scores are 0 and they are never written
    cp_async_16(q_s + r * S + c * 8, a.q + (valid ? (first_row + r) * D + c * 8 : 0), valid);
  }
  // Q in flight, the cache slots of the partition in one pass over the table: the tiles' copies then wait on shared
  // memory, not on the table.
  for (int i = tid; i < end - start; i += kThreads)
    slots[i] = static_cast<int32_t>(paged_slot(table, start + i, a.block_size));
  __syncthreads();
  auto load_kv = [&](int p0, int buf) {
    for (int idx = tid; idx < N * C; idx += kThreads) {
      const int r = idx / C, c = idx % C, p = p0 + r;
      // Positions past the partition are zero (a masked weight times a zero V stays 0), their table entries never
      // followed: under graph-padded bounds they hold anything.
      const bool valid = p < end;
      const int64_t off = valid ? slots[p - start] * kv_row + c * 8 : 0;
      cp_async_16(k_s + (buf * N + r) * S + c * 8, k_head + off, valid);
      cp_async_16(v_s + (buf * N + r) * S + c * 8, v_head + off, valid);
    }
  };
  load_kv(start, 0);
  cp_async_commit();

  const int g = lane / 4, t = lane % 4;
  float o[D / 8][4];
#pragma unroll
  for (int nb = 0; nb < D / 8; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
  // Rows g and g + 8 of this warp's share; row_sum covers this thread's columns only until the end.
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};

  const int tiles = (end - start + N - 1) / N;
  for (int it = 0; it < tiles; ++it) {
    const int p0 = start + it * N, buf = it % 2;
    if (it + 1 < tiles) load_kv(p0 + N, buf ^ 1);  // its buffer was released by the barrier ending it - 1
    cp_async_commit();
    cp_async_wait<1>();  // tile it (and Q) landed for this thread
    __syncthreads();     // ... and for every thread
    const int key0 = p0 + warp * kWarpKeys;
    if (key0 < end) {  // warp-uniform: the last tile may leave some warps nothing
      const T* k_tile = k_s + (buf * N + warp * kWarpKeys) * S;
      const T* v_tile = v_s + (buf * N + warp * kWarpKeys) * S;
      float sc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};  // keys 0-7, 8-15 of the warp's 16
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[4], kb[4];
        ldmatrix_x4(qa, q_s + (lane % 16) * S + kk * 16 + (lane / 16) * 8);
        // keys 0-7 (dims kk*16.. and +8), then keys 8-15
        ldmatrix_x4(kb, k_tile + (lane % 8 + (lane / 16) * 8) * S + kk * 16 + ((lane / 8) % 2) * 8);
        mma_16816<T>(sc[0], qa, kb[0], kb[1]);
        mma_16816<T>(sc[1], qa, kb[2], kb[3]);
      }
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int p = key0 + nb * 8 + 2 * t + e % 2;
          sc[nb][e] = p < end ? sc[nb][e] * a.scale_log2 : -INFINITY;
        }
      // Every warp with work sees its first key unmasked, so each row's max is finite after this tile.
      online_softmax_tile(sc, o, row_max, row_sum);
      const uint32_t pa[4] = {pack2<T>(sc[0][0], sc[0][1]), pack2<T>(sc[0][2], sc[0][3]),
                              pack2<T>(sc[1][0], sc[1][1]), pack2<T>(sc[1][2], sc[1][3])};
#pragma unroll
      for (int nb = 0; nb < D / 8; nb += 2) {
        uint32_t vb[4];  // dims nb*8.. (keys 0-7 and 8-15), then dims nb*8+8..
        ldmatrix_x4_trans(vb, v_tile + (lane % 8 + ((lane / 8) % 2) * 8) * S + nb * 8 + (lane / 16) * 8);
        mma_16816<T>(o[nb], pa, vb[0], vb[1]);
        mma_16816<T>(o[nb + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads();  // every warp is done with buffer `buf` before iteration it + 1 refills it
  }

  // Merge the warps: out = sum_w 2^(m_w - m) O_w / sum_w 2^(m_w - m) l_w with m = max_w m_w (a warp that saw no
  // position has m_w = -inf and weighs 0; warp 0 always saw the partition's first position).
  float* partial = reinterpret_cast<float*>(k_s);  // the last tile's barrier released the K/V tiles
  float* maxes = partial + kWarps * kRows * D;
  float* sums = maxes + kWarps * kRows;
  float* inv_totals = sums + kWarps * kRows;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = row_sum[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = g + 8 * i;
    if (t == 0) {
      maxes[warp * kRows + row] = row_max[i];
      sums[warp * kRows + row] = sum;
    }
    float* dst = partial + (warp * kRows + row) * D + 2 * t;
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb)
      *reinterpret_cast<float2*>(dst + nb * 8) = make_float2(o[nb][2 * i], o[nb][2 * i + 1]);
  }
  __syncthreads();
  if (tid < nh) {  // per head: the warps' weights 2^(m_w - m) (in place of their maxima), m and the total
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, maxes[w * kRows + tid]);
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = exp2f(maxes[w * kRows + tid] - m);
      maxes[w * kRows + tid] = f;
      total += sums[w * kRows + tid] * f;
    }
    inv_totals[tid] = 1.0f / total;
    if (splits > 1) {
      const int64_t idx = (first_row + tid) * splits + split;
      a.part_max[idx] = m * kLn2;  // the merge works in natural-log units
      a.part_sum[idx] = total;
    }
  }
  __syncthreads();
  for (int idx = tid; idx < nh * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += partial[(w * kRows + r) * D + d] * maxes[w * kRows + r];
    v *= inv_totals[r];
    if (splits == 1)
      a.out[(first_row + r) * D + d] = from_f32<T>(v);
    else
      a.part_out[((first_row + r) * splits + split) * D + d] = v;
  }
}

template <typename T, int D>
void launch(const DecodeArgs<T>& args, int64_t num_seqs, int64_t splits, cudaStream_t stream) {
  using Shape = DecodeMmaShape<T, D>;
  CUDA_CHECK(cudaFuncSetAttribute(decode_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(Shape::kSharedBytes)));
  const int64_t group = args.heads / args.kv_heads;
  const int64_t blocks_per_seq = args.kv_heads * ((group + kRows - 1) / kRows);
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(blocks_per_seq),
                  static_cast<unsigned>(num_seqs));
  decode_mma_kernel<T, D><<<grid, Shape::kThreads, Shape::kSharedBytes, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void paged_attention_decode_mma(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                                int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t num_seqs,
                                int64_t partition, int64_t splits, T* out, float* part_out, float* part_max,
                                float* part_sum, const PagedLayout& layout, float scale, int window,
                                cudaStream_t stream) {
  const DecodeArgs<T> args = make_decode_args(q, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens,
                                                 partition, out, part_out, part_max, part_sum, layout, scale, window);
  switch (layout.head_dim) {
    case 64: launch<T, 64>(args, num_seqs, splits, stream); return;
    case 80: launch<T, 80>(args, num_seqs, splits, stream); return;
    case 96: launch<T, 96>(args, num_seqs, splits, stream); return;
    case 128: launch<T, 128>(args, num_seqs, splits, stream); return;
    case 256: launch<T, 256>(args, num_seqs, splits, stream); return;
    default:
      LATTICE_THROW("paged_attention_decode_mma: head_dim ", layout.head_dim,
                    " is not one of 64, 80, 96, 128, 256 (the dispatcher should not have chosen this kernel)");
  }
}

#define LATTICE_INSTANTIATE(T)                                                                                \
  template void paged_attention_decode_mma<T>(const T*, const T*, const T*, const int32_t*, int64_t,          \
                                              const int32_t*, int64_t, int64_t, int64_t, T*, float*, float*, \
                                              float*, const PagedLayout&, float, int, cudaStream_t);
LATTICE_INSTANTIATE(__half)
LATTICE_INSTANTIATE(__nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda::detail
