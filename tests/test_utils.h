// Shared comparisons and fixtures for the Lattice test suites.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/core/tensor.h"

namespace lattice::testing {

// The test data folder: $LATTICE_TEST_DATA_DIR when set (a binary carried to another machine, where the checkout
// lies elsewhere), else the source tree's tests/data compiled in.
inline std::string data_dir() {
  const char* env = std::getenv("LATTICE_TEST_DATA_DIR");
  return env && *env ? env : LATTICE_TEST_DATA_DIR;
}

// The float64 reference outputs for the tiny-llama fixture (tests/data/tiny-llama/expected.json).
inline const nlohmann::json& tiny_llama_expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(data_dir() + "/tiny-llama/expected.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

// sqrt(sum (a-b)^2) / sqrt(sum b^2), in double.
template <typename A, typename B>
double rel_l2(const A* a, const B* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Element-wise |got - want| <= atol + rtol * |want|; reports the first mismatching index.
template <typename A, typename B>
::testing::AssertionResult all_close(const A* got, const B* want, int64_t n, double rtol, double atol) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w)))
      return ::testing::AssertionFailure() << "first mismatch at index " << i << " of " << n << ": got " << g
                                           << ", want " << w << " (rtol " << rtol << ", atol " << atol << ")";
  }
  return ::testing::AssertionSuccess();
}

inline Tensor random_tensor(std::vector<int64_t> shape, std::mt19937& rng, float scale = 1.0f) {
  Tensor t = Tensor::empty(std::move(shape), DType::f32);
  std::normal_distribution<float> dist(0.0f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// Fills with NaN so that any element an op forgets to write fails the comparison.
inline Tensor poisoned_tensor(std::vector<int64_t> shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::f32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = NAN;
  return t;
}

}  // namespace lattice::testing
