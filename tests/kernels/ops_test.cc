// Each op against a naive float64 reference on random inputs, over several shapes including odd sizes.
// Tolerances: f32 ops whose reductions run over <= 4k elements stay within ~1e-6 relative of float64;
// 1e-5 relative (+ a small absolute floor for values near zero) leaves margin for BLAS blocking orders.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>

#include "engine/ops/ops.h"
#include "models/model_config.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

using testing::all_close;
using testing::poisoned_tensor;
using testing::random_tensor;

constexpr double kRtol = 1e-5;
constexpr double kAtol = 1e-6;

struct Shape2 {
  int64_t rows, cols;
};
const Shape2 kShapes[] = {{1, 1}, {1, 64}, {3, 17}, {7, 128}, {33, 257}, {5, 4096}};

TEST(Ops, RmsNormMatchesFloat64) {
  std::mt19937 rng(1);
  for (const Shape2 s : kShapes) {
    Tensor x = random_tensor({s.rows, s.cols}, rng, 3.0f), w = random_tensor({s.cols}, rng);
    Tensor out = poisoned_tensor({s.rows, s.cols});
    ops::rms_norm(x, w, 1e-5f, out);
    std::vector<double> want(s.rows * s.cols);
    for (int64_t r = 0; r < s.rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < s.cols; ++i) ss += std::pow(static_cast<double>(x.data<float>()[r * s.cols + i]), 2);
      const double inv = 1.0 / std::sqrt(ss / s.cols + 1e-5);
      for (int64_t i = 0; i < s.cols; ++i)
        want[r * s.cols + i] = x.data<float>()[r * s.cols + i] * inv * w.data<float>()[i];
    }
    EXPECT_TRUE(all_close(out.data<float>(), want.data(), out.numel(), kRtol, kAtol)) << s.rows << "x" << s.cols;
  }
}

TEST(Ops, LinearWithAndWithoutBiasMatchesFloat64) {
  std::mt19937 rng(2);
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 33, 65}, {2, 64, 128}, {17, 100, 31}, {64, 257, 129}};
  for (const auto& mnk : shapes) {
    const int64_t m = mnk[0], n = mnk[1], k = mnk[2];
    Tensor x = random_tensor({m, k}, rng), w = random_tensor({n, k}, rng), b = random_tensor({n}, rng);
    for (const bool with_bias : {false, true}) {
      Tensor out = poisoned_tensor({m, n});
      ops::linear(x, w, with_bias ? &b : nullptr, out);
      std::vector<double> want(m * n);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double acc = with_bias ? b.data<float>()[j] : 0.0;
          for (int64_t p = 0; p < k; ++p)
            acc += static_cast<double>(x.data<float>()[i * k + p]) * w.data<float>()[j * k + p];
          want[i * n + j] = acc;
        }
      // Dot products of length k: error grows ~sqrt(k) * eps * |terms|, so the floor scales with sqrt(k).
      EXPECT_TRUE(all_close(out.data<float>(), want.data(), m * n, kRtol, 1e-5 * std::sqrt(k)))
          << m << "x" << n << "x" << k << " bias " << with_bias;
    }
  }
}

// Independent RoPE reference: complex rotation of (x[i], x[i + d/2]) by position * theta^(-2i/d).
std::vector<double> rope_reference(const Tensor& x, const std::vector<int32_t>& pos, const std::vector<float>& inv) {
  const int64_t t = x.dim(0), h = x.dim(1), d = x.dim(2), half = d / 2;
  std::vector<double> out(x.numel());
  for (int64_t a = 0; a < t; ++a)
    for (int64_t b = 0; b < h; ++b)
      for (int64_t i = 0; i < half; ++i) {
        const float* v = x.data<float>() + (a * h + b) * d;
        const double angle = pos[a] * static_cast<double>(inv[i]);
        const std::complex<double> z(v[i], v[i + half]);
        const std::complex<double> r = z * std::polar(1.0, angle);
        out[(a * h + b) * d + i] = r.real();
        out[(a * h + b) * d + i + half] = r.imag();
      }
  return out;
}

TEST(Ops, RopeMatchesComplexRotation) {
  std::mt19937 rng(3);
  for (const int64_t d : {2, 16, 64, 128}) {
    ModelConfig c;
    c.head_dim = d;
    c.rope_theta = 10000.0;
    const std::vector<float> inv = c.rope_inv_freq();
    Tensor x = random_tensor({5, 3, d}, rng);
    std::vector<int32_t> pos = {0, 1, 7, 511, 4095};
    const std::vector<double> want = rope_reference(x, pos, inv);
    Tensor inv_t = Tensor::from_vector(inv, {d / 2}), pos_t = Tensor::from_vector(pos, {5});
    ops::rope_(x, pos_t, inv_t);
    // Angles up to 4095 rad: float32 sin/cos of the same double angle agree to ~1e-7.
    EXPECT_TRUE(all_close(x.data<float>(), want.data(), x.numel(), kRtol, 1e-6)) << "head_dim " << d;
  }
}

TEST(Ops, Llama3RopeScalingMatchesPublishedFormula) {
  // Values computed independently (Python, float64) from the Llama 3.1 rope_scaling formula with
  // theta 500000, factor 8, low 1, high 4, original 8192, head_dim 128.
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  const std::vector<float> inv = c.rope_inv_freq();
  ASSERT_EQ(inv.size(), 64u);
  // 0 and 20 keep their frequency, 30 and 33 fall in the smoothed band, 45 and 63 are divided by the factor.
  const std::pair<int, double> want[] = {{0, 1.0},           {20, 0.01656044008},     {30, 0.001371893568},
                                         {33, 0.0003126937504}, {45, 1.229763868e-05}, {63, 3.068925989e-07}};
  for (const auto& [i, v] : want) EXPECT_NEAR(inv[i], v, v * 1e-6) << "frequency " << i;
}

TEST(Ops, SiluMulAndEmbeddingMatchFloat64) {
  std::mt19937 rng(4);
  for (const Shape2 s : kShapes) {
    Tensor gate = random_tensor({s.rows, s.cols}, rng, 4.0f), up = random_tensor({s.rows, s.cols}, rng);
    Tensor out = poisoned_tensor({s.rows, s.cols});
    ops::silu_mul(gate, up, out);
    std::vector<double> want(out.numel());
    for (int64_t i = 0; i < out.numel(); ++i) {
      const double g = gate.data<float>()[i];
      want[i] = g / (1 + std::exp(-g)) * up.data<float>()[i];
    }
    EXPECT_TRUE(all_close(out.data<float>(), want.data(), out.numel(), kRtol, kAtol));
  }
  Tensor table = random_tensor({11, 9}, rng);
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{10, 0, 3, 3, 14}, {5});
  Tensor out = poisoned_tensor({5, 9});
  ops::embedding(table, ids, 0, out);
  for (int64_t t = 0; t < 4; ++t)
    EXPECT_TRUE(all_close(out.data<float>() + t * 9, table.data<float>() + ids.data<int32_t>()[t] * 9, 9, 0, 0));
  // A vocabulary shard holding ids [3, 14): rows outside it are zero, inside come from row id - 3.
  Tensor shard = table.rows(0, 11);
  ops::embedding(shard, ids, 3, out);
  const std::vector<float> zeros(9, 0.0f);
  EXPECT_TRUE(all_close(out.data<float>() + 0 * 9, table.data<float>() + 7 * 9, 9, 0, 0));
  EXPECT_TRUE(all_close(out.data<float>() + 1 * 9, zeros.data(), 9, 0, 0));
  EXPECT_TRUE(all_close(out.data<float>() + 2 * 9, table.data<float>(), 9, 0, 0));
  EXPECT_TRUE(all_close(out.data<float>() + 4 * 9, zeros.data(), 9, 0, 0));
}

TEST(Ops, AddMatchesElementwiseSum) {
  std::mt19937 rng(5);
  Tensor x = random_tensor({3, 1000}, rng), y = random_tensor({3, 1000}, rng);
  std::vector<double> want(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) want[i] = static_cast<double>(x.data<float>()[i]) + y.data<float>()[i];
  ops::add_(x, y);
  EXPECT_TRUE(all_close(x.data<float>(), want.data(), x.numel(), 1e-7, 0));
}

TEST(Ops, RejectMismatchedOperandsNamingBothSizes) {
  Tensor x = Tensor::zeros({2, 8}, DType::f32), w = Tensor::zeros({4, 7}, DType::f32), out = Tensor::zeros({2, 4}, DType::f32);
  try {
    ops::linear(x, w, nullptr, out);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x has 8 features, weight expects 7"), std::string::npos) << e.what();
  }
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 4}, {2});
  Tensor table = Tensor::zeros({4, 8}, DType::f32), emb = Tensor::zeros({2, 7}, DType::f32);
  EXPECT_THROW(ops::embedding(table, ids, 0, emb), Error);
  Tensor half = Tensor::zeros({2, 8}, DType::bf16);
  try {
    ops::rms_norm(half, Tensor::zeros({8}, DType::f32), 1e-5f, half);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 rms_norm is not available on cpu"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lattice
