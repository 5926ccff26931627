// Deterministic uniform values from a counter-based hash, the same on the CPU (here) and on a GPU
// (kernels/cuda/fill_random.cuh): generated weights that need no file and no host copy of the model.
//
// Element i of a tensor with seed s holds  offset + scale * u(s, i)  (one fused multiply-add, so one rounding
// in f32 on both sides), where u(s, i) = (z >> 40) * 2^-23 - 1, in [-1, 1), exact in f32, and z is output
// number i + 1 of a SplitMix64 generator seeded with s, i.e. z = splitmix64_mix(s + (i + 1) * 0x9e3779b97f4a7c15).
// Half-precision outputs are that f32 rounded to nearest even.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LATTICE_HOST_DEVICE __host__ __device__
#else
#define LATTICE_HOST_DEVICE
#endif

namespace lattice::kernels {

// What to fill a slice of a tensor with. Slice element j is element base + (j / width) * stride + j % width of
// the whole tensor (runs of `width` elements, `stride` apart: a row-major block of rows or of columns).
struct HashFill {
  uint64_t seed = 0;
  float offset = 0.0f;
  float scale = 1.0f;
  int64_t base = 0;
  int64_t width = 1;
  int64_t stride = 1;
};

inline constexpr uint64_t kSplitMix64Gamma = 0x9e3779b97f4a7c15ull;

LATTICE_HOST_DEVICE inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The value of element j of the slice `fill` describes.
LATTICE_HOST_DEVICE inline float hash_fill_value(const HashFill& fill, int64_t j) {
  const uint64_t i = static_cast<uint64_t>(fill.base + (j / fill.width) * fill.stride + j % fill.width);
  const uint64_t z = splitmix64_mix(fill.seed + (i + 1) * kSplitMix64Gamma);
  const float u = static_cast<float>(static_cast<uint32_t>(z >> 40)) * 0x1p-23f - 1.0f;
  return fmaf(u, fill.scale, fill.offset);
}

namespace cpu {

// dst[k] = hash_fill_value(fill, first + k) for k < count, as f32 or as bf16 / f16 bits.
void fill_hash_f32(float* dst, int64_t first, int64_t count, const HashFill& fill);
void fill_hash_bf16(uint16_t* dst, int64_t first, int64_t count, const HashFill& fill);
void fill_hash_f16(uint16_t* dst, int64_t first, int64_t count, const HashFill& fill);

}  // namespace cpu
}  // namespace lattice::kernels
