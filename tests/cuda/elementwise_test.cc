// Embedding gather, RMSNorm (plain and fused with the residual add) and SiLU-gated activation on the GPU
// against kernels/cpu, on fresh random inputs with odd sizes and NaN-poisoned outputs; the async-scheduling token
// feed against a host loop.
#include <gtest/gtest.h>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/norm.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/feed_tokens.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace cpu = kernels::cpu;
namespace gpu = kernels::cuda;

// A vocabulary shard [first_id, first_id + rows): ids below, inside and above it (outside ones give zeros).
template <typename TTable, typename TOut>
void check_embedding() {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", table " << dtype_name<TTable>() << ", out "
                                    << dtype_name<TOut>());
  std::mt19937 rng(seed);
  const int64_t first_id = 5, rows = 37, tokens = 13, dim = 77;
  const auto table = round_to<TTable>(random_values(static_cast<size_t>(rows * dim), rng));
  std::uniform_int_distribution<int32_t> id_dist(0, static_cast<int32_t>(first_id + rows + 4));
  std::vector<int32_t> ids(tokens);
  for (auto& id : ids) id = id_dist(rng);
  ids[0] = 0;                                          // below the shard
  ids[1] = static_cast<int32_t>(first_id + rows);      // just above it
  ids[2] = static_cast<int32_t>(first_id);             // its first row
  std::vector<float> want(static_cast<size_t>(tokens * dim));
  cpu::embedding_f32(table.data(), first_id, rows, ids.data(), want.data(), tokens, dim);

  auto d_table = to_device<TTable>(table);
  auto d_ids = ints_to_device(ids);
  DeviceBuffer<TOut> d_out(want.size());
  gpu::embedding(d_table.get(), first_id, rows, d_ids.get(), d_out.get(), tokens, dim, nullptr);
  const auto got = d_out.download();
  // A gather copies values that TOut holds exactly (TOut is f32 or the table's own type): exact.
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()), 0.0, 0.0));
}

TEST(CudaEmbedding, F32Table) { LATTICE_SKIP_WITHOUT_CUDA(); check_embedding<float, float>(); }
TEST(CudaEmbedding, Bf16TableToF32) { LATTICE_SKIP_WITHOUT_CUDA(); check_embedding<__nv_bfloat16, float>(); }
TEST(CudaEmbedding, Bf16TableToBf16) { LATTICE_SKIP_WITHOUT_CUDA(); check_embedding<__nv_bfloat16, __nv_bfloat16>(); }
TEST(CudaEmbedding, F16TableToF32) { LATTICE_SKIP_WITHOUT_CUDA(); check_embedding<__half, float>(); }
TEST(CudaEmbedding, F16TableToF16) { LATTICE_SKIP_WITHOUT_CUDA(); check_embedding<__half, __half>(); }

// ids[row] = tokens[source] for the fed rows only (out-of-vocabulary tokens, a failed draw, as 0); the other ids
// keep their values.
TEST(CudaFeedTokens, WritesTheFedRowsOnly) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const int32_t vocab = 50;
  std::vector<int32_t> ids = {7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const std::vector<int32_t> tokens = {41, 3, -1, 49, 50, 0};
  const std::vector<int32_t> feeds = {0, 3, 2, 0, 5, 2, 9, 4, 6, 1, 7, 5};  // (row, source) pairs
  std::vector<int32_t> want = ids;
  for (size_t i = 0; i < feeds.size(); i += 2) {
    const int32_t t = tokens[static_cast<size_t>(feeds[i + 1])];
    want[static_cast<size_t>(feeds[i])] = t >= 0 && t < vocab ? t : 0;
  }
  auto d_ids = ints_to_device(ids);
  auto d_tokens = ints_to_device(tokens);
  auto d_feeds = ints_to_device(feeds);
  gpu::feed_tokens(d_ids.get(), d_tokens.get(), d_feeds.get(), static_cast<int32_t>(feeds.size() / 2), vocab, nullptr);
  EXPECT_EQ(d_ids.download_raw<int32_t>(), want);
}

// residual += x, out = rms_norm(residual) * weight (or out = rms_norm(x) * weight without a residual).
template <typename T>
void check_rms_norm(int64_t rows, int64_t dim, bool fused) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", rows " << rows << ", dim "
                                    << dim << (fused ? ", fused residual" : ""));
  std::mt19937 rng(seed);
  const float eps = 1e-5f;
  const auto x = round_to<T>(random_values(static_cast<size_t>(rows * dim), rng, 2.0f));
  const auto residual = round_to<T>(random_values(x.size(), rng));
  const auto weight = round_to<T>(random_values(static_cast<size_t>(dim), rng, 0.5f));

  // The oracle: the add in f32 rounded to T (the kernel stores the residual in T and normalises that).
  std::vector<float> want_residual = x;
  if (fused) {
    cpu::add_inplace_f32(want_residual.data(), residual.data(), static_cast<int64_t>(x.size()));
    want_residual = round_to<T>(want_residual);
  }
  std::vector<float> want(x.size());
  cpu::rms_norm_f32(want_residual.data(), weight.data(), want.data(), rows, dim, eps);

  auto d_x = to_device<T>(x);
  auto d_residual = to_device<T>(residual);
  auto d_weight = to_device<T>(weight);
  DeviceBuffer<T> d_out(x.size());
  gpu::rms_norm(d_x.get(), fused ? d_residual.get() : nullptr, d_weight.get(), d_out.get(), rows, dim, eps, nullptr);
  const auto got = d_out.download();
  const int64_t n = static_cast<int64_t>(x.size());
  EXPECT_TRUE(all_close(got.data(), want.data(), n, Tolerance<T>::rtol, Tolerance<T>::atol));
  if (fused) {
    // The stored residual is x + residual rounded once to T: the f32 sums may differ by one rounding of T.
    const auto got_residual = d_residual.download();
    EXPECT_TRUE(all_close(got_residual.data(), want_residual.data(), n, Tolerance<T>::rtol, Tolerance<T>::atol));
  }
}

TEST(CudaRmsNorm, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_rms_norm<float>(7, 1003, false); }
TEST(CudaRmsNorm, F32Fused) { LATTICE_SKIP_WITHOUT_CUDA(); check_rms_norm<float>(7, 1003, true); }
TEST(CudaRmsNorm, F32WideRows) { LATTICE_SKIP_WITHOUT_CUDA(); check_rms_norm<float>(3, 5003, true); }
TEST(CudaRmsNorm, Bf16Fused) { LATTICE_SKIP_WITHOUT_CUDA(); check_rms_norm<__nv_bfloat16>(5, 4099, true); }
TEST(CudaRmsNorm, Bf16FinalNorm) { LATTICE_SKIP_WITHOUT_CUDA(); check_rms_norm<__nv_bfloat16>(9, 131, false); }
TEST(CudaRmsNorm, F16Fused) { LATTICE_SKIP_WITHOUT_CUDA(); check_rms_norm<__half>(5, 771, true); }

template <typename T>
void check_silu_mul(int64_t rows, int64_t inter, bool fused_layout) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", rows " << rows << ", inter "
                                    << inter << (fused_layout ? ", fused gate/up" : ""));
  std::mt19937 rng(seed);
  const auto gate = round_to<T>(random_values(static_cast<size_t>(rows * inter), rng, 3.0f));
  const auto up = round_to<T>(random_values(gate.size(), rng));
  std::vector<float> want(gate.size());
  cpu::silu_mul_f32(gate.data(), up.data(), want.data(), rows, inter, inter);

  DeviceBuffer<T> d_out(gate.size());
  if (fused_layout) {
    std::vector<float> gate_up(static_cast<size_t>(rows * 2 * inter));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < inter; ++i) {
        gate_up[r * 2 * inter + i] = gate[r * inter + i];
        gate_up[r * 2 * inter + inter + i] = up[r * inter + i];
      }
    auto d_gate_up = to_device<T>(gate_up);
    gpu::silu_mul(d_gate_up.get(), d_gate_up.get() + inter, d_out.get(), rows, inter, 2 * inter, nullptr);
  } else {
    auto d_gate = to_device<T>(gate);
    auto d_up = to_device<T>(up);
    gpu::silu_mul(d_gate.get(), d_up.get(), d_out.get(), rows, inter, inter, nullptr);
  }
  const auto got = d_out.download();
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()), Tolerance<T>::rtol,
                        Tolerance<T>::atol));
}

TEST(CudaSiluMul, F32) { LATTICE_SKIP_WITHOUT_CUDA(); check_silu_mul<float>(9, 333, false); }
TEST(CudaSiluMul, F32FusedGateUp) { LATTICE_SKIP_WITHOUT_CUDA(); check_silu_mul<float>(9, 333, true); }
TEST(CudaSiluMul, Bf16FusedGateUp) { LATTICE_SKIP_WITHOUT_CUDA(); check_silu_mul<__nv_bfloat16>(11, 1001, true); }
TEST(CudaSiluMul, F16) { LATTICE_SKIP_WITHOUT_CUDA(); check_silu_mul<__half>(3, 257, false); }

}  // namespace
}  // namespace lattice::testing::cuda
