// Each CPU op against a naive float64 reference on random inputs, over several shapes including odd sizes.
// Tolerances: f32 ops whose reductions run over <= 4k elements stay within ~1e-6 relative of float64;
// 1e-5 relative (+ a small absolute floor for values near zero) leaves margin for BLAS blocking orders.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstring>

#include "engine/ops/ops.h"
#include "kernels/cpu/convert.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

using testing::all_close;
using testing::poisoned_tensor;
using testing::random_tensor;

constexpr double kRtol = 1e-5;
constexpr double kAtol = 1e-6;
const ops::ExecContext kCpu = ops::ExecContext::cpu();

struct Shape2 {
  int64_t rows, cols;
};
const Shape2 kShapes[] = {{1, 1}, {1, 64}, {3, 17}, {7, 128}, {33, 257}, {5, 4096}};

// float64 rms_norm(x) * w of one row.
std::vector<double> rms_norm_reference(const std::vector<double>& x, const float* w) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + 1e-5);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * inv * w[i];
  return out;
}

// The error message of `f`, which must throw a lattice::Error.
template <typename F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TEST(Ops, RmsNormMatchesFloat64) {
  std::mt19937 rng(1);
  for (const Shape2 s : kShapes) {
    Tensor x = random_tensor({s.rows, s.cols}, rng, 3.0f), w = random_tensor({s.cols}, rng);
    Tensor out = poisoned_tensor({s.rows, s.cols});
    ops::rms_norm(kCpu, x, w, 1e-5f, out);
    for (int64_t r = 0; r < s.rows; ++r) {
      const float* xr = x.data<float>() + r * s.cols;
      const auto want = rms_norm_reference(std::vector<double>(xr, xr + s.cols), w.data<float>());
      EXPECT_TRUE(all_close(out.data<float>() + r * s.cols, want.data(), s.cols, kRtol, kAtol))
          << s.rows << "x" << s.cols << " row " << r;
    }
  }
}

// residual += x, then out = rms_norm(residual) * w, with out in x's buffer as the layer loop uses it.
TEST(Ops, AddRmsNormUpdatesTheResidualAndNormalisesIt) {
  std::mt19937 rng(6);
  for (const Shape2 s : kShapes) {
    Tensor x = random_tensor({s.rows, s.cols}, rng, 2.0f), residual = random_tensor({s.rows, s.cols}, rng);
    Tensor w = random_tensor({s.cols}, rng);
    std::vector<double> sum(x.numel());
    for (int64_t i = 0; i < x.numel(); ++i)
      sum[i] = static_cast<double>(x.data<float>()[i]) + residual.data<float>()[i];
    ops::add_rms_norm(kCpu, x, residual, w, 1e-5f, x);
    // The residual is one f32 addition of each pair: within half an ulp of the float64 sum.
    EXPECT_TRUE(all_close(residual.data<float>(), sum.data(), x.numel(), 1e-7, 0)) << s.rows << "x" << s.cols;
    for (int64_t r = 0; r < s.rows; ++r) {
      const auto want = rms_norm_reference(std::vector<double>(sum.begin() + r * s.cols, sum.begin() + (r + 1) * s.cols),
                                           w.data<float>());
      EXPECT_TRUE(all_close(x.data<float>() + r * s.cols, want.data(), s.cols, kRtol, kAtol))
          << s.rows << "x" << s.cols << " row " << r;
    }
  }
}

// Qwen3's q/k norms: each q head and each k head of the fused qkv rows normalised in place with its own weight
// [head_dim]; the v heads are not touched (bit for bit).
TEST(Ops, HeadRmsNormNormalisesEachQAndKHeadInPlace) {
  std::mt19937 rng(9);
  const int64_t shapes[][4] = {{1, 1, 1, 2}, {5, 4, 2, 16}, {3, 8, 1, 128}, {9, 6, 3, 72}};  // tokens, heads, kv, dim
  for (const auto& [tokens, heads, kv_heads, head_dim] : shapes) {
    const int64_t width = (heads + 2 * kv_heads) * head_dim;
    Tensor qkv = random_tensor({tokens, width}, rng, 3.0f);
    const Tensor before = qkv.clone();
    const Tensor q_w = random_tensor({head_dim}, rng), k_w = random_tensor({head_dim}, rng);
    ops::head_rms_norm(kCpu, qkv, 0, heads, q_w, 1e-5f);
    ops::head_rms_norm(kCpu, qkv, heads * head_dim, kv_heads, k_w, 1e-5f);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t h = 0; h < heads + 2 * kv_heads; ++h) {
        const int64_t at = t * width + h * head_dim;
        const float* x = before.data<float>() + at;
        const float* got = qkv.data<float>() + at;
        if (h >= heads + kv_heads) {  // a v head
          EXPECT_EQ(std::memcmp(got, x, static_cast<size_t>(head_dim) * sizeof(float)), 0) << "token " << t << " v head " << h;
          continue;
        }
        const auto want = rms_norm_reference(std::vector<double>(x, x + head_dim), (h < heads ? q_w : k_w).data<float>());
        EXPECT_TRUE(all_close(got, want.data(), head_dim, kRtol, kAtol))
            << tokens << "x" << heads << "+" << kv_heads << "x" << head_dim << " token " << t << " head " << h;
      }
  }
  const std::string fit_error = error_of([&] {
    Tensor qkv = Tensor::zeros({2, 64}, DType::f32);
    ops::head_rms_norm(kCpu, qkv, 32, 3, Tensor::zeros({16}, DType::f32), 1e-5f);
  });
  EXPECT_NE(fit_error.find("head_rms_norm: 3 heads of 16 from column 32 do not fit in qkv"), std::string::npos)
      << fit_error;
}

TEST(Ops, LinearWithAndWithoutBiasMatchesFloat64) {
  std::mt19937 rng(2);
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 33, 65}, {2, 64, 128}, {17, 100, 31}, {64, 257, 129}};
  for (const auto& mnk : shapes) {
    const int64_t m = mnk[0], n = mnk[1], k = mnk[2];
    Tensor x = random_tensor({m, k}, rng), w = random_tensor({n, k}, rng), b = random_tensor({n}, rng);
    for (const bool with_bias : {false, true}) {
      Tensor out = poisoned_tensor({m, n});
      ops::linear(kCpu, x, w, with_bias ? &b : nullptr, out);
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

// Independent RoPE reference: complex rotation of (v[i], v[i + d/2]) by position * inv_freq[i] (the op's f32
// frequencies, theta^(-2i/d) rounded, taken exactly).
std::vector<double> rotated(const float* v, int64_t d, int32_t position, const std::vector<float>& inv_freq) {
  const int64_t half = d / 2;
  std::vector<double> out(d);
  for (int64_t i = 0; i < half; ++i) {
    const double angle = position * static_cast<double>(inv_freq[i]);
    const std::complex<double> r = std::complex<double>(v[i], v[i + half]) * std::polar(1.0, angle);
    out[i] = r.real();
    out[i + half] = r.imag();
  }
  return out;
}

// q rotated into q_out; k rotated and v copied into the cache at each token's slot; a padding token (slot -1)
// writes nothing to the cache; qkv is left as it was.
TEST(Ops, RopeWriteKvMatchesComplexRotationAndFillsTheCacheSlots) {
  std::mt19937 rng(3);
  const double theta = 10000.0;
  const int64_t tokens = 5, heads = 6, kv_heads = 2, block_size = 3, num_blocks = 4;
  for (const int64_t d : {2, 16, 64, 128}) {
    const int64_t q_row = heads * d, kv_row = kv_heads * d;
    Tensor qkv = random_tensor({tokens, q_row + 2 * kv_row}, rng);
    const Tensor qkv_before = qkv.clone();
    std::vector<float> inv(d / 2);
    for (int64_t i = 0; i < d / 2; ++i) inv[i] = static_cast<float>(std::pow(theta, -2.0 * i / d));
    const std::vector<int32_t> pos = {0, 1, 7, 511, 4095};
    const std::vector<int64_t> slots = {4, 0, -1, 11, 7};
    Tensor q_out = poisoned_tensor({tokens, heads, d});
    Tensor k_cache = poisoned_tensor({num_blocks, block_size, kv_heads, d});
    Tensor v_cache = poisoned_tensor({num_blocks, block_size, kv_heads, d});
    ops::rope_write_kv(kCpu, qkv, Tensor::from_vector(pos, {tokens}), Tensor::from_vector(inv, {d / 2}),
                       Tensor::from_vector(slots, {tokens}), k_cache, v_cache, q_out);
    for (int64_t t = 0; t < tokens; ++t) {
      const float* row = qkv_before.data<float>() + t * qkv.dim(1);
      // Angles up to 4095 rad: float32 sin/cos of the same double angle agree to ~1e-7.
      for (int64_t h = 0; h < heads; ++h)
        EXPECT_TRUE(all_close(q_out.data<float>() + (t * heads + h) * d, rotated(row + h * d, d, pos[t], inv).data(),
                              d, kRtol, 1e-6))
            << "head_dim " << d << " token " << t << " q head " << h;
      if (slots[t] < 0) continue;
      for (int64_t h = 0; h < kv_heads; ++h)
        EXPECT_TRUE(all_close(k_cache.data<float>() + slots[t] * kv_row + h * d,
                              rotated(row + q_row + h * d, d, pos[t], inv).data(), d, kRtol, 1e-6))
            << "head_dim " << d << " token " << t << " k head " << h;
      EXPECT_TRUE(all_close(v_cache.data<float>() + slots[t] * kv_row, row + q_row + kv_row, kv_row, 0, 0));
    }
    // Slots no token names (the padding token's included) stay poisoned.
    for (const int64_t slot : {1, 2, 3, 5, 6, 8, 9, 10})
      for (int64_t i = 0; i < kv_row; ++i) {
        EXPECT_TRUE(std::isnan(k_cache.data<float>()[slot * kv_row + i])) << "slot " << slot;
        EXPECT_TRUE(std::isnan(v_cache.data<float>()[slot * kv_row + i])) << "slot " << slot;
      }
    EXPECT_TRUE(all_close(qkv.data<float>(), qkv_before.data<float>(), qkv.numel(), 0, 0));
  }
}

// The fused gate/up projection's output: gate in the first half of each row, up in the second.
TEST(Ops, SiluMulOfTheFusedGateUpLayoutMatchesFloat64) {
  std::mt19937 rng(4);
  for (const Shape2 s : kShapes) {
    Tensor gate_up = random_tensor({s.rows, 2 * s.cols}, rng, 4.0f);
    Tensor out = poisoned_tensor({s.rows, s.cols});
    ops::silu_mul(kCpu, gate_up, out);
    std::vector<double> want(out.numel());
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t i = 0; i < s.cols; ++i) {
        const double g = gate_up.data<float>()[r * 2 * s.cols + i], u = gate_up.data<float>()[r * 2 * s.cols + s.cols + i];
        want[r * s.cols + i] = g / (1 + std::exp(-g)) * u;
      }
    EXPECT_TRUE(all_close(out.data<float>(), want.data(), out.numel(), kRtol, kAtol)) << s.rows << "x" << s.cols;
  }
}

TEST(Ops, EmbeddingOfAWholeTableAndOfAVocabularyShard) {
  std::mt19937 rng(4);
  Tensor table = random_tensor({11, 9}, rng);
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{10, 0, 3, 3, 14}, {5});
  Tensor out = poisoned_tensor({5, 9});
  ops::embedding(kCpu, table, ids, 0, out);
  for (int64_t t = 0; t < 4; ++t)
    EXPECT_TRUE(all_close(out.data<float>() + t * 9, table.data<float>() + ids.data<int32_t>()[t] * 9, 9, 0, 0));
  // A vocabulary shard holding ids [3, 14): rows outside it are zero, inside come from row id - 3.
  ops::embedding(kCpu, table, ids, 3, out);
  const std::vector<float> zeros(9, 0.0f);
  EXPECT_TRUE(all_close(out.data<float>() + 0 * 9, table.data<float>() + 7 * 9, 9, 0, 0));
  EXPECT_TRUE(all_close(out.data<float>() + 1 * 9, zeros.data(), 9, 0, 0));
  EXPECT_TRUE(all_close(out.data<float>() + 2 * 9, table.data<float>(), 9, 0, 0));
  EXPECT_TRUE(all_close(out.data<float>() + 4 * 9, zeros.data(), 9, 0, 0));
}

// The rows a step samples from: any order, repeats allowed; an index outside the rows gives zeros.
TEST(Ops, GatherRowsCopiesTheIndexedRows) {
  std::mt19937 rng(7);
  Tensor x = random_tensor({6, 13}, rng);
  const std::vector<int32_t> index = {5, 0, 5, 2, 6, -1};
  Tensor out = poisoned_tensor({6, 13});
  ops::gather_rows(kCpu, x, Tensor::from_vector(index, {6}), out);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_TRUE(all_close(out.data<float>() + i * 13, x.data<float>() + index[i] * 13, 13, 0, 0)) << "row " << i;
  const std::vector<float> zeros(2 * 13, 0.0f);
  EXPECT_TRUE(all_close(out.data<float>() + 4 * 13, zeros.data(), 2 * 13, 0, 0));
}

// Values each format holds exactly survive every conversion unchanged; others round to nearest even
// (bit-level rounding is covered in convert_test.cc).
TEST(Ops, ConvertBetweenF32F16AndBf16) {
  const std::vector<float> exact = {0.0f, 1.0f, -2.0f, 1.5f, 0.375f, -96.0f, 0.0078125f, 256.0f};
  const int64_t n = static_cast<int64_t>(exact.size());
  const Tensor src = Tensor::from_vector(exact, {2, n / 2});
  for (const DType a : {DType::f32, DType::f16, DType::bf16})
    for (const DType b : {DType::f32, DType::f16, DType::bf16}) {
      Tensor first = Tensor::empty({n}, a), second = Tensor::empty({2, n / 2}, b);
      Tensor back = poisoned_tensor({2, n / 2});
      ops::convert(kCpu, src, first);
      ops::convert(kCpu, first, second);
      ops::convert(kCpu, second, back);
      EXPECT_TRUE(all_close(back.data<float>(), exact.data(), n, 0, 0))
          << "f32 -> " << dtype_name(a) << " -> " << dtype_name(b) << " -> f32";
    }
  // 1 + 2^-9 lies between bf16 neighbours 1 and 1 + 2^-7 (nearest: 1), and is exact in f16.
  Tensor half = Tensor::empty({1}, DType::f16), brain = Tensor::empty({1}, DType::bf16);
  ops::convert(kCpu, Tensor::from_vector(std::vector<float>{1.0f + 1.0f / 512}, {1}), half);
  ops::convert(kCpu, half, brain);
  EXPECT_EQ(kernels::cpu::f16_to_f32(static_cast<uint16_t*>(half.raw())[0]), 1.0f + 1.0f / 512);
  EXPECT_EQ(kernels::cpu::bf16_to_f32(static_cast<uint16_t*>(brain.raw())[0]), 1.0f);
}

TEST(Ops, AddMatchesElementwiseSum) {
  std::mt19937 rng(5);
  Tensor x = random_tensor({3, 1000}, rng), y = random_tensor({3, 1000}, rng);
  std::vector<double> want(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) want[i] = static_cast<double>(x.data<float>()[i]) + y.data<float>()[i];
  ops::add_(kCpu, x, y);
  EXPECT_TRUE(all_close(x.data<float>(), want.data(), x.numel(), 1e-7, 0));
}

TEST(Ops, RejectMismatchedOperandsNamingBothSizes) {
  Tensor x = Tensor::zeros({2, 8}, DType::f32), w = Tensor::zeros({4, 7}, DType::f32), out = Tensor::zeros({2, 4}, DType::f32);
  EXPECT_NE(error_of([&] { ops::linear(kCpu, x, w, nullptr, out); }).find("x has 8 features, weight expects 7"),
            std::string::npos);
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 4}, {2});
  Tensor table = Tensor::zeros({4, 8}, DType::f32), emb = Tensor::zeros({2, 7}, DType::f32);
  EXPECT_THROW(ops::embedding(kCpu, table, ids, 0, emb), Error);
  // q 4 heads + k/v 2 heads each of 8: rows of 64, not 60.
  Tensor qkv = Tensor::zeros({3, 60}, DType::f32), q_out = Tensor::zeros({3, 4, 8}, DType::f32);
  Tensor cache = Tensor::zeros({2, 4, 2, 8}, DType::f32);
  const std::string rope_error = error_of([&] {
    ops::rope_write_kv(kCpu, qkv, Tensor::zeros({3}, DType::i32), Tensor::zeros({4}, DType::f32),
                       Tensor::zeros({3}, DType::i64), cache, cache, q_out);
  });
  EXPECT_NE(rope_error.find("qkv rows have 60 elements, 4 + 2 * 2 heads of 8 need 64"), std::string::npos)
      << rope_error;
  // A slot past the cache's 2 blocks of 4.
  Tensor good_qkv = Tensor::zeros({3, 64}, DType::f32);
  const std::string slot_error = error_of([&] {
    ops::rope_write_kv(kCpu, good_qkv, Tensor::zeros({3}, DType::i32), Tensor::zeros({4}, DType::f32),
                       Tensor::from_vector(std::vector<int64_t>{0, 8, 1}, {3}), cache, cache, q_out);
  });
  EXPECT_NE(slot_error.find("token 1 has slot 8, the cache has 8"), std::string::npos) << slot_error;
  Tensor gate_up = Tensor::zeros({2, 10}, DType::f32), small = Tensor::zeros({2, 4}, DType::f32);
  EXPECT_NE(error_of([&] { ops::silu_mul(kCpu, gate_up, small); }).find("should be [2, 5]"), std::string::npos);
}

TEST(Ops, RejectHalfDtypesOnTheCpuAndOperandsOnAnotherDevice) {
  Tensor half = Tensor::zeros({2, 8}, DType::bf16);
  const std::string dtype_error = error_of([&] { ops::rms_norm(kCpu, half, Tensor::zeros({8}, DType::bf16), 1e-5f, half); });
  EXPECT_NE(dtype_error.find("bf16 rms_norm is not available on cpu"), std::string::npos) << dtype_error;
  // A cuda:0 tensor (never dereferenced: the device check comes first) handed to a CPU op.
  float fake;
  Tensor on_gpu = Tensor::borrow(&fake, {1, 1}, DType::f32, Device::cuda(0));
  Tensor x = Tensor::zeros({1, 1}, DType::f32);
  const std::string device_error = error_of([&] { ops::add_(kCpu, x, on_gpu); });
  EXPECT_NE(device_error.find("add: y is on cuda:0, the op runs on cpu"), std::string::npos) << device_error;
#ifndef LATTICE_HAVE_CUDA
  ops::ExecContext gpu_ctx;
  gpu_ctx.device = Device::cuda(0);
  const std::string backend_error = error_of([&] { ops::add_(gpu_ctx, on_gpu, on_gpu); });
  EXPECT_NE(backend_error.find("add on cuda:0: this build has no CUDA backend"), std::string::npos) << backend_error;
#endif
}

}  // namespace
}  // namespace lattice
