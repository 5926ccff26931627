// first_nonfinite against an element-by-element reference (each value converted to f32, std::isfinite), for
// f32, bf16 and f16 data at unaligned addresses, with the bad element before, on and after block boundaries.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "engine/core/error.h"
#include "engine/weights/nonfinite_scan.h"
#include "kernels/cpu/convert.h"

namespace lattice {
namespace {

float element(const unsigned char* p, DType dtype, int64_t i) {
  if (dtype == DType::f32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return dtype == DType::bf16 ? kernels::cpu::bf16_to_f32(h) : kernels::cpu::f16_to_f32(h);
}

int64_t reference(const unsigned char* p, DType dtype, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(element(p, dtype, i))) return i;
  return -1;
}

TEST(NonfiniteScan, MatchesAnElementwiseReference) {
  std::mt19937 rng(3);
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    const size_t size = dtype_size(dtype);
    for (int64_t count : {0, 1, 7, 4095, 4096, 4097, 12289}) {
      for (int64_t bad : {int64_t{-1}, int64_t{0}, count / 2, count - 1, int64_t{4095}, int64_t{4096}}) {
        if (bad >= count) continue;
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " count " + std::to_string(count) + " bad " + std::to_string(bad));
        std::vector<unsigned char> bytes(static_cast<size_t>(count) * size + 1);
        unsigned char* p = bytes.data() + 1;  // unaligned for every dtype
        std::normal_distribution<float> normal(0.0f, 100.0f);
        for (int64_t i = 0; i < count; ++i) {
          const float f = normal(rng);
          const uint16_t h = dtype == DType::bf16 ? kernels::cpu::f32_to_bf16(f) : kernels::cpu::f32_to_f16(f);
          std::memcpy(p + i * size, dtype == DType::f32 ? static_cast<const void*>(&f) : &h, size);
        }
        if (bad >= 0) {  // NaN, inf or -inf, and a finite maximum just before
          const float kinds[] = {NAN, INFINITY, -INFINITY};
          const float f = kinds[rng() % 3];
          const uint16_t h = dtype == DType::bf16 ? kernels::cpu::f32_to_bf16(f) : kernels::cpu::f32_to_f16(f);
          std::memcpy(p + bad * size, dtype == DType::f32 ? static_cast<const void*>(&f) : &h, size);
          EXPECT_STREQ(nonfinite_kind(p, dtype, bad), std::isnan(f) ? "NaN" : f > 0 ? "inf" : "-inf");
        }
        ASSERT_EQ(reference(p, dtype, count), bad);
        EXPECT_EQ(first_nonfinite(p, dtype, count), bad);
      }
    }
  }
  // The largest finite values are finite.
  const uint32_t f32_max = 0x7f7fffffu;
  const uint16_t bf16_max = 0x7f7f, f16_max = 0x7bff;
  EXPECT_EQ(first_nonfinite(&f32_max, DType::f32, 1), -1);
  EXPECT_EQ(first_nonfinite(&bf16_max, DType::bf16, 1), -1);
  EXPECT_EQ(first_nonfinite(&f16_max, DType::f16, 1), -1);
  EXPECT_THROW(first_nonfinite(&f32_max, DType::i32, 1), Error);
}

}  // namespace
}  // namespace lattice
