// Hopper (sm_90a) building blocks for warpgroup MMA kernels (included only from .cu files; use inside an
// __CUDA_ARCH_FEAT_SM90_ALL guard): shared-memory matrix descriptors for the 128-byte-swizzled layout, the
// wgmma fence / commit / wait, mbarriers (a phase completes when the expected number of threads arrived; a
// thread's cp.async copies can arrive for it when they land), named barriers and register reallocation.
//
// The 128-byte-swizzled layout ("SW128"): a matrix is stored as panels of 64 16-bit columns; panel row r is
// 128 bytes, and its 16-byte chunk c sits at chunk c ^ (r % 8) of the row. Eight rows make a 1024-byte atom,
// and every panel must start 1024-byte aligned (the hardware swizzles on address bits, not offsets).
#pragma once

#include <cstdint>

#include "kernels/cuda/mma_sm80.cuh"

namespace lattice::kernels::cuda::detail {

// Byte offset of element (row, col) of a 16-bit matrix stored SW128 with `rows` rows per panel.
__device__ __forceinline__ uint32_t sw128_offset(int row, int col, int rows) {
  const int panel = col / 64, chunk = (col % 64) / 8;
  return static_cast<uint32_t>(panel * rows * 128 + row * 128 + ((chunk ^ (row % 8)) * 16) + (col % 8) * 2);
}

// Descriptor of a SW128 operand starting at shared address `address` (1024-aligned, or an atom start plus a
// K offset of 32/64/96 bytes for K-major operands). K-major (rows = M or N, 16 k-values per MMA within one
// 128-byte row): consecutive 8-row groups are 1024 bytes apart (stride byte offset); the leading offset is
// unused. MN-major (the transposed B of P V: rows = k, 64 n-values per panel row): k-groups of 8 rows are
// 1024 bytes apart (stride) and consecutive 64-column panels `panel_bytes` apart (leading).
__device__ __forceinline__ uint64_t sw128_descriptor(uint32_t address, uint32_t panel_bytes) {
  uint64_t desc = 0;
  desc |= static_cast<uint64_t>((address & 0x3FFFF) >> 4);              // bits 0-13: start address / 16
  desc |= static_cast<uint64_t>((panel_bytes & 0x3FFFF) >> 4) << 16;    // bits 16-29: leading byte offset / 16
  desc |= static_cast<uint64_t>(1024 >> 4) << 32;                        // bits 32-45: stride byte offset / 16
  desc |= static_cast<uint64_t>(1) << 62;                                // bits 62-63: 1 = 128-byte swizzle
  return desc;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most `pending` committed wgmma groups of this warpgroup are in flight.
template <int pending> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
}
// Keeps the compiler from moving reads or writes of accumulator registers across an asynchronous MMA's
// issue or wait (the asm statements order among themselves; plain register arithmetic would not).
template <int n> __device__ __forceinline__ void fence_registers(float (&r)[n]) {
#pragma unroll
  for (int i = 0; i < n; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int n> __device__ __forceinline__ void fence_registers(uint32_t (&r)[n][4]) {
#pragma unroll
  for (int i = 0; i < n; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// Orders this thread's generic-proxy view of shared memory (cp.async and st.shared results) before later
// async-proxy reads (wgmma operands).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void mbarrier_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(shared_address(bar)) : "memory");
}
// Arrives on `bar` for this thread once every cp.async it issued before has landed (counts as its one arrival).
__device__ __forceinline__ void mbarrier_arrive_on_cp_async(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(shared_address(bar)) : "memory");
}
// Waits for the completion of the phase of parity `parity` (the first phase is parity 0).
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "wait_%=:\n"
      "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}\n" ::"r"(shared_address(bar)),
      "r"(parity)
      : "memory");
}

// Barrier `id` (1..15; 0 is __syncthreads) among `threads` threads (a multiple of 32).
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Register reallocation between warpgroups (every thread of a warpgroup executes the same one).
template <int registers> __device__ __forceinline__ void release_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(registers));
}
template <int registers> __device__ __forceinline__ void claim_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(registers));
}

}  // namespace lattice::kernels::cuda::detail
