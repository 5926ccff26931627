// The counter-based uniform every sampler draws from, identical on the host (kernels/cpu/sampling.h,
// engine/sampler) and the GPU (kernels/cuda/sample_top_k.cu): u = splitmix64 over (seed, offset), where offset
// is the draw's index within the sequence (the number of tokens generated so far). A draw depends on
// (seed, offset) only: not on the batch, the row, the backend, or how often the sequence was recomputed.
// Header-only so that .cc and .cu files compile the same arithmetic.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LATTICE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LATTICE_HOST_DEVICE inline
#endif

namespace lattice::kernels {

inline constexpr uint64_t kSplitmix64Increment = 0x9e3779b97f4a7c15ull;

// splitmix64's output function: the stream seeded with x yields finalize(x + k * increment), k = 1, 2, ...
LATTICE_HOST_DEVICE uint64_t splitmix64_finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// 53 random bits as a double in [0, 1): output offset + 1 of the splitmix64 stream seeded with finalize(seed).
// The seed is mixed first: seeds that differ by a multiple of the increment (the scheduler derives request
// id x increment + 1) would otherwise give one stream shifted by an offset.
LATTICE_HOST_DEVICE double sampling_uniform(uint64_t seed, uint64_t offset) {
  const uint64_t z = splitmix64_finalize(splitmix64_finalize(seed) + kSplitmix64Increment * (offset + 1));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace lattice::kernels

#undef LATTICE_HOST_DEVICE
