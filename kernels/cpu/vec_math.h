// exp for f32 loops the compiler can vectorise: std::exp is a library call that GCC vectorises only under
// -ffast-math, which the oracle backend does not use. Inline, branch-free, so `#pragma omp simd` loops over it
// become SIMD code.
#pragma once

#include <bit>
#include <cstdint>

namespace lattice::kernels::cpu {

// e^x for finite or infinite x: 2^n * e^f with n = round(x log2 e) and f = x - n ln 2 (Cody-Waite: ln 2 split in
// a head whose product with n is exact and a tail, so f keeps x's precision even at |x| ~ 88), |f| <= ln2 / 2,
// e^f from its degree-6 Taylor polynomial (truncation error < 1.3e-7 relative, within a few ulp overall). x below about
// -87.5 gives 0 (e^x is then far below the smallest normal float) and -inf gives 0; x above 88.73 gives +inf;
// NaN gives NaN.
inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Head = 0.693359375f, kLn2Tail = -2.12194440e-4f;  // head has 9 significant bits
  const float clamped = x > -87.5f ? (x < 88.75f ? x : 88.75f) : -87.5f;  // NaN takes -87.5: no NaN reaches the int
  // nearbyint (the current rounding mode, to nearest) vectorises; roundf and floorf do not under -ftrapping-math.
  const float n = __builtin_nearbyintf(clamped * kLog2e);
  const float f = (clamped - n * kLn2Head) - n * kLn2Tail;  // in [-ln2 / 2, ln2 / 2]
  float p = 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  // 2^n by building the exponent field; n in [-127, 128] after the clamp, split in two halves so that neither
  // factor leaves the normal range (2^-126 * 2^-1 still underflows to the right subnormal/zero).
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t half = ni / 2;
  const float a = std::bit_cast<float>((half + 127) << 23), b = std::bit_cast<float>((ni - half + 127) << 23);
  const float r = p * a * b;
  return x < -87.5f ? 0.0f : (x == x ? r : x);
}

}  // namespace lattice::kernels::cpu
