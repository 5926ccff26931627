// The counter-based uniform every sampler draws from, identical on the host (kernels/cpu/sampling.h,
// engine/sampler) and the GPU (kernels/cuda/sample_top_k.cu): u = splitmix64's finaliser over
// (seed, offset), where offset is the draw's index within the sequence (the number of tokens generated so
// far). A draw depends on (seed, offset) only: not on the batch, the row, the backend, or how often the
// sequence was recomputed. Header-only so that .cc and .cu files compile the same arithmetic.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LATTICE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LATTICE_HOST_DEVICE inline
#endif

namespace lattice::kernels {

// 53 random bits as a double in [0, 1).
LATTICE_HOST_DEVICE double sampling_uniform(uint64_t seed, uint64_t offset) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (offset + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace lattice::kernels

#undef LATTICE_HOST_DEVICE
