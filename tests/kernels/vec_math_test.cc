// The vectorisable exp against the float64 exp: within 4 ulp-sized relative error over the range softmax and SiLU
// use, exact at 0, and the edge cases (underflow to 0, overflow to inf, NaN). The read-bandwidth sum against an
// exact integer sum.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/read_bandwidth.h"
#include "kernels/cpu/vec_math.h"

namespace lattice::kernels::cpu {
namespace {

TEST(ExpF32, MatchesFloat64ExpAcrossTheRange) {
  double worst = 0;
  float worst_x = 0;
  // Every 1/4096 from -87 to 88.5: both halves of each reduction interval, every exponent.
  for (int i = -87 * 4096; i <= 88 * 4096 + 2048; ++i) {
    const float x = static_cast<float>(i) / 4096.0f;
    const double want = std::exp(static_cast<double>(x));
    const double err = std::fabs(exp_f32(x) - want) / want;
    if (err > worst) {
      worst = err;
      worst_x = x;
    }
  }
  // float's unit roundoff is 6e-8; the polynomial's truncation error is 1.3e-7 and Horner adds a few roundings.
  EXPECT_LT(worst, 4e-7) << "at x = " << worst_x;
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
}

TEST(ExpF32, UnderflowOverflowAndNan) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_f32(-kInf), 0.0f);
  EXPECT_EQ(exp_f32(-100.0f), 0.0f);
  EXPECT_EQ(exp_f32(kInf), kInf);
  EXPECT_EQ(exp_f32(89.0f), kInf);
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // Subnormal results keep their value to a subnormal's precision.
  EXPECT_NEAR(exp_f32(-87.4f), std::exp(static_cast<double>(-87.4f)), 3e-45);  // two subnormal steps
}

// Small integers, so every partial sum is exact in f32 whatever the order: the blocked sum with a tail (n not a
// multiple of the 256-element stride), a length below one stride, and nothing.
TEST(SumF32, EqualsTheExactSumWithTailsAndShortLengths) {
  for (const int64_t n : {int64_t{0}, int64_t{7}, int64_t{255}, int64_t{256}, int64_t{100003}}) {
    std::vector<float> x(static_cast<size_t>(n));
    int64_t want = 0;
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(i)] = static_cast<float>(i % 37);
      want += i % 37;
    }
    EXPECT_EQ(sum_f32(x.data(), n), static_cast<float>(want)) << "n = " << n;
  }
}

}  // namespace
}  // namespace lattice::kernels::cpu
