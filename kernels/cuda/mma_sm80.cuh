// Warp-level tensor-core building blocks for sm_80 and later (included only from .cu files): 16-byte cp.async
// copies into shared memory, ldmatrix fragment loads and mma.sync m16n8k16 with f32 accumulators for f16 and
// bf16. Fragment layouts (PTX ISA, "mma.m16n8k16"), g = lane / 4, t = lane % 4:
//   A 16x16 row-major: a[0] (row g, cols 2t, 2t+1), a[1] (row g+8, same), a[2] (row g, cols 2t+8, +9), a[3] (g+8).
//   B 16x8 (k x n): b[0] (k 2t, 2t+1; n g), b[1] (k 2t+8, +9; n g).
//   C 16x8 f32: c[0], c[1] (row g, cols 2t, 2t+1), c[2], c[3] (row g+8, same cols).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lattice::kernels::cuda::detail {

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies 16 bytes from global memory to shared memory asynchronously; when !valid it writes 16 zero bytes and
// reads nothing (src must still be a mapped address).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most `pending` of this thread's committed groups are still in flight.
template <int pending> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}

// Four 8x8 b16 matrices; lane l gives the row address of matrix l / 8, row l % 8 (16-byte aligned).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row))
               : "memory");
}
// The same, each matrix transposed on the way (a row-major k x n operand becomes a B fragment).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row))
               : "memory");
}

// c += a * b for one m16n8k16 tile; T is __half or __nv_bfloat16.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats rounded (nearest even) to T and packed, lo in the low half: one A/B register or one 4-byte store.
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One online-softmax step (base 2) over a tile of scores in the C layout: sc[NB][4] holds NB 8-column blocks of
// the thread's two rows (elements 2i, 2i+1 on row g + 8i), scaled, hidden positions already -inf; o[DB][4] the
// output accumulators of the same rows. Raises row_max to the tile's row maxima (over the quad that holds each row),
// turns sc into the weights exp2(s - max), adds them to row_sum and rescales o by exp2(old max - new max). A row
// that has seen nothing yet keeps max -inf and gets weights 0 (no NaN from -inf - -inf).
template <int NB, int DB>
__device__ __forceinline__ void online_softmax_tile(float (&sc)[NB][4], float (&o)[DB][4], float (&row_max)[2],
                                                    float (&row_sum)[2]) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float mx = row_max[i];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) mx = fmaxf(mx, fmaxf(sc[nb][2 * i], sc[nb][2 * i + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));  // the quad holds the row
    const float base = mx == -INFINITY ? 0.0f : mx;
    const float alpha = exp2f(row_max[i] - base);
    row_max[i] = mx;
    float sum = 0.0f;
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 2 * i; e < 2 * i + 2; ++e) {
        sc[nb][e] = exp2f(sc[nb][e] - base);
        sum += sc[nb][e];
      }
    row_sum[i] = row_sum[i] * alpha + sum;
#pragma unroll
    for (int nb = 0; nb < DB; ++nb) {
      o[nb][2 * i] *= alpha;
      o[nb][2 * i + 1] *= alpha;
    }
  }
}

}  // namespace lattice::kernels::cuda::detail
