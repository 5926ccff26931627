// The 128-byte-swizzled shared-memory layout ("SW128") of 16-bit wgmma operands, as host and device arithmetic
// (the wgmma prefill kernel uses it; tests/cuda/wgmma_layout_test.cc checks it on the host against the PTX ISA's
// canonical layouts). A matrix is stored as panels of 64 columns; panel row r is 128 bytes and its 16-byte chunk
// c sits at chunk c ^ (r % 8) of the row; eight rows make a 1024-byte atom, and every panel starts 1024-byte
// aligned (the hardware swizzles on address bits, not offsets).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LATTICE_SW128_FN __host__ __device__ __forceinline__
#else
#define LATTICE_SW128_FN inline
#endif

namespace lattice::kernels::cuda::detail {

// Byte offset of element (row, col) of a matrix stored SW128 with `rows` rows per panel.
LATTICE_SW128_FN uint32_t sw128_offset(int row, int col, int rows) {
  const int panel = col / 64, chunk = (col % 64) / 8;
  return static_cast<uint32_t>(panel * rows * 128 + row * 128 + ((chunk ^ (row % 8)) * 16) + (col % 8) * 2);
}

// Bytes between consecutive 64-column panels of a matrix of `rows` rows.
LATTICE_SW128_FN uint32_t sw128_panel_bytes(int rows) { return static_cast<uint32_t>(rows) * 128u; }

// K-major operand (rows = M or N, columns = k): the start of k-step kk (columns 16 kk .. 16 kk + 15), 32 bytes
// per step into a 128-byte panel row.
LATTICE_SW128_FN uint32_t sw128_k_major_step(uint32_t base, int rows, int kk) {
  return base + static_cast<uint32_t>(kk / 4) * sw128_panel_bytes(rows) + static_cast<uint32_t>(kk % 4) * 32u;
}

// MN-major operand (rows = k, columns = n): the start of k-step kk (rows 16 kk .. 16 kk + 15), two atoms per step.
LATTICE_SW128_FN uint32_t sw128_mn_major_step(uint32_t base, int kk) { return base + static_cast<uint32_t>(kk) * 2048u; }

// wgmma shared-memory descriptor of a SW128 operand starting at shared address `address`. K-major: consecutive
// 8-row groups 1024 bytes apart (stride byte offset), the leading byte offset unused (16, encoded 1, as the PTX
// ISA assumes). MN-major: 8-row k groups 1024 bytes apart (stride), 64-column panels `leading_bytes` apart.
LATTICE_SW128_FN uint64_t sw128_descriptor(uint32_t address, uint32_t leading_bytes) {
  uint64_t desc = 0;
  desc |= static_cast<uint64_t>((address & 0x3FFFF) >> 4);            // bits 0-13: start address / 16
  desc |= static_cast<uint64_t>((leading_bytes & 0x3FFFF) >> 4) << 16;  // bits 16-29: leading byte offset / 16
  desc |= static_cast<uint64_t>(1024 >> 4) << 32;                      // bits 32-45: stride byte offset / 16
  desc |= static_cast<uint64_t>(1) << 62;                              // bits 62-63: 1 = 128-byte swizzle
  return desc;
}

}  // namespace lattice::kernels::cuda::detail

#undef LATTICE_SW128_FN
