// Host arithmetic (runs without a GPU): the wgmma prefill kernel's shared-memory operands. For every element of
// every k-step operand the kernel hands to wgmma (Q and K: K-major, V: MN-major, at the kernel's head dims and
// tile sizes), the address that wgmma reads according to the PTX ISA ("Shared Memory Matrix Layout": canonical
// SW128 layouts, matrix descriptor format), decoded from the descriptor the kernel builds, must be where the
// kernel's copies stored that element (sw128_offset). The kernel itself has not run on a GPU; this checks its
// addressing against the documented layout, not the hardware.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>

#include "kernels/cuda/wgmma_layout.h"

namespace lattice::testing::cuda {
namespace {

using namespace kernels::cuda::detail;

// A descriptor's fields in bytes (PTX ISA, "Matrix Descriptor Format").
struct Descriptor {
  uint32_t start, leading, stride, base_offset, swizzle;
};

Descriptor decode(uint64_t d) {
  return {static_cast<uint32_t>(d & 0x3FFF) << 4, static_cast<uint32_t>((d >> 16) & 0x3FFF) << 4,
          static_cast<uint32_t>((d >> 32) & 0x3FFF) << 4, static_cast<uint32_t>((d >> 49) & 0x7),
          static_cast<uint32_t>(d >> 62)};
}

// The 128-byte swizzle on a shared address: bits 4-6 (the 16-byte chunk) XOR bits 7-9 (the row in the atom).
uint32_t swizzle_128b(uint32_t address) { return address ^ ((address >> 3) & 0x70); }

// Canonical SW128 layouts for 16-bit elements (T = 8 elements per 16 bytes), in bytes:
// K-major ((8,m),(T,2k)):((8T,SBO),(1,T)): element (i, j), i the M/N row, j < 16 the k column.
uint32_t k_major_address(const Descriptor& d, int i, int j) {
  return swizzle_128b(d.start + (i % 8) * 128 + (i / 8) * d.stride + j * 2);
}
// MN-major ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)): element (k, n), k < 16 the k row, n the N column.
uint32_t mn_major_address(const Descriptor& d, int k, int n) {
  return swizzle_128b(d.start + (n % 64) * 2 + (n / 64) * d.leading + (k % 8) * 128 + (k / 8) * d.stride);
}

constexpr uint32_t kBase = 0x9000;  // a 1024-aligned shared address, as the kernel aligns its operands

TEST(WgmmaLayout, StorageIsABijectionOntoTheTile) {
  for (int rows : {64, 128})
    for (int cols : {64, 128, 256}) {
      std::set<uint32_t> seen;
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
          const uint32_t offset = sw128_offset(r, c, rows);
          ASSERT_LT(offset, static_cast<uint32_t>(rows * cols * 2)) << rows << " x " << cols << " (" << r << ", " << c << ")";
          ASSERT_EQ(offset % 2, 0u);
          ASSERT_TRUE(seen.insert(offset).second) << rows << " x " << cols << " (" << r << ", " << c << ")";
        }
    }
}

// S = Q K^T: A is Q (64 rows of one consumer), B is a K tile (N positions); both K-major over head_dim.
TEST(WgmmaLayout, KMajorStepsReadWhatTheCopiesStored) {
  for (int head_dim : {64, 128, 256})
    for (int rows : {64, 128}) {
      for (int kk = 0; kk < head_dim / 16; ++kk) {
        const Descriptor d = decode(sw128_descriptor(sw128_k_major_step(kBase, rows, kk), 16));
        ASSERT_EQ(d.swizzle, 1u);
        ASSERT_EQ(d.base_offset, 0u);
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < 16; ++j)
            ASSERT_EQ(k_major_address(d, i, j), kBase + sw128_offset(i, kk * 16 + j, rows))
                << "head_dim " << head_dim << ", rows " << rows << ", k-step " << kk << ", element (" << i << ", " << j
                << ")";
      }
    }
}

// O += P V: B is a V tile (N positions x head_dim) stored like K and read MN-major, 16 positions per k-step.
TEST(WgmmaLayout, MnMajorStepsReadWhatTheCopiesStored) {
  for (int head_dim : {64, 128, 256})
    for (int positions : {64, 128}) {
      for (int kk = 0; kk < positions / 16; ++kk) {
        const Descriptor d = decode(sw128_descriptor(sw128_mn_major_step(kBase, kk), sw128_panel_bytes(positions)));
        ASSERT_EQ(d.swizzle, 1u);
        for (int k = 0; k < 16; ++k)
          for (int n = 0; n < head_dim; ++n)
            ASSERT_EQ(mn_major_address(d, k, n), kBase + sw128_offset(kk * 16 + k, n, positions))
                << "head_dim " << head_dim << ", positions " << positions << ", k-step " << kk << ", element (" << k
                << ", " << n << ")";
      }
    }
}

}  // namespace
}  // namespace lattice::testing::cuda
