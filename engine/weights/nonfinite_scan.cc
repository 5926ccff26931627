#include "engine/weights/nonfinite_scan.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "engine/core/error.h"

namespace lattice {
namespace {

// A value is non-finite when its magnitude bits (all but the sign) are at least `kInf`, the pattern of +inf.
// Magnitudes fit the signed type, whose compare SSE2 has, so a block ORs one compare mask per element
// (vectorised); only a block with a hit is searched for the element.
template <typename Bits, Bits kMagnitude, Bits kInf>
int64_t first_in(const unsigned char* data, int64_t count) {
  using Signed = std::make_signed_t<Bits>;
  constexpr int64_t kBlock = 4096;
  auto bad = [](Bits x) { return static_cast<Signed>(x & kMagnitude) >= static_cast<Signed>(kInf); };
  for (int64_t at = 0; at < count; at += kBlock) {
    const int64_t n = std::min(kBlock, count - at);
    const unsigned char* block = data + static_cast<size_t>(at) * sizeof(Bits);
    Signed any = 0;
    for (int64_t i = 0; i < n; ++i) {
      Bits x;
      std::memcpy(&x, block + i * sizeof(Bits), sizeof(Bits));  // unaligned loads
      any |= static_cast<Signed>(-static_cast<Signed>(bad(x)));
    }
    if (!any) continue;
    for (int64_t i = 0; i < n; ++i) {
      Bits x;
      std::memcpy(&x, block + i * sizeof(Bits), sizeof(Bits));
      if (bad(x)) return at + i;
    }
  }
  return -1;
}

// The element's bits, the magnitude mask and the +inf pattern of `dtype`.
struct ElementBits {
  uint32_t bits, magnitude, inf;
};

ElementBits element_bits(const void* data, DType dtype, int64_t index) {
  const auto* p = static_cast<const unsigned char*>(data) + static_cast<size_t>(index) * dtype_size(dtype);
  if (dtype == DType::f32) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    return {x, 0x7fffffffu, 0x7f800000u};
  }
  uint16_t x;
  std::memcpy(&x, p, 2);
  return {x, 0x7fffu, dtype == DType::bf16 ? 0x7f80u : 0x7c00u};
}

}  // namespace

int64_t first_nonfinite(const void* data, DType dtype, int64_t count) {
  const auto* p = static_cast<const unsigned char*>(data);
  switch (dtype) {
    case DType::f32: return first_in<uint32_t, 0x7fffffffu, 0x7f800000u>(p, count);
    case DType::bf16: return first_in<uint16_t, 0x7fffu, 0x7f80u>(p, count);
    case DType::f16: return first_in<uint16_t, 0x7fffu, 0x7c00u>(p, count);
    default: LATTICE_THROW("cannot scan ", dtype_name(dtype), " data for NaN/inf (f32, bf16 or f16 only)");
  }
}

const char* nonfinite_kind(const void* data, DType dtype, int64_t index) {
  const ElementBits e = element_bits(data, dtype, index);
  if ((e.bits & e.magnitude) > e.inf) return "NaN";
  return e.bits & ~e.magnitude ? "-inf" : "inf";
}

}  // namespace lattice
