// RoPE fused with the paged KV write on the GPU against kernels/cpu rope_f32 + write_kv_f32: rotated q and k,
// and the cache rows at each token's slot, with slots scattered over an odd block size and a padding token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/rope_kv.cuh"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace cpu = kernels::cpu;
namespace gpu = kernels::cuda;

template <typename T>
void check_rope_write_kv(int64_t tokens, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", tokens " << tokens
                                    << ", heads " << heads << "/" << kv_heads << ", head_dim " << head_dim);
  std::mt19937 rng(seed);
  const int64_t block_size = 7, num_blocks = 5;
  const int64_t half = head_dim / 2, kv_row = kv_heads * head_dim;
  ASSERT_LE(tokens, block_size * num_blocks);

  const auto q = round_to<T>(random_values(static_cast<size_t>(tokens * heads * head_dim), rng));
  const auto k = round_to<T>(random_values(static_cast<size_t>(tokens * kv_row), rng));
  const auto v = round_to<T>(random_values(k.size(), rng));
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / head_dim));
  std::uniform_int_distribution<int32_t> pos_dist(0, 100000);  // long contexts: the angle needs f64
  std::vector<int32_t> positions(tokens);
  for (auto& p : positions) p = pos_dist(rng);
  std::vector<int64_t> all_slots(static_cast<size_t>(block_size * num_blocks));
  std::iota(all_slots.begin(), all_slots.end(), 0);
  std::shuffle(all_slots.begin(), all_slots.end(), rng);
  std::vector<int64_t> slots(all_slots.begin(), all_slots.begin() + tokens);
  slots[tokens / 2] = -1;  // a padding token: rotated, not stored

  // Oracle: rotate (f32), round to T as the kernel stores, then write the cache.
  std::vector<float> want_q = q, want_k = k;
  cpu::rope_f32(want_q.data(), positions.data(), inv_freq.data(), tokens, heads, head_dim);
  cpu::rope_f32(want_k.data(), positions.data(), inv_freq.data(), tokens, kv_heads, head_dim);

  auto d_q = to_device<T>(q);
  auto d_k = to_device<T>(k);
  auto d_v = to_device<T>(v);
  auto d_positions = ints_to_device(positions);
  auto d_inv_freq = to_device<float>(inv_freq);
  auto d_slots = ints_to_device(slots);
  DeviceBuffer<T> d_k_cache(static_cast<size_t>(block_size * num_blocks * kv_row));
  DeviceBuffer<T> d_v_cache(d_k_cache.size());
  const gpu::PagedLayout layout{heads, kv_heads, head_dim, block_size};
  gpu::rope_write_kv(d_q.get(), d_k.get(), d_v.get(), d_positions.get(), d_inv_freq.get(), d_slots.get(),
                     d_k_cache.get(), d_v_cache.get(), tokens, layout, nullptr);

  // Rotation of O(1) values: f32 differs by sin/cos and fma ordering only; bf16/f16 by the output rounding.
  const auto got_q = d_q.download(), got_k = d_k.download();
  EXPECT_TRUE(all_close(got_q.data(), want_q.data(), static_cast<int64_t>(q.size()), Tolerance<T>::rtol,
                        Tolerance<T>::atol));
  EXPECT_TRUE(all_close(got_k.data(), want_k.data(), static_cast<int64_t>(k.size()), Tolerance<T>::rtol,
                        Tolerance<T>::atol));

  const auto k_cache = d_k_cache.download(), v_cache = d_v_cache.download();
  std::vector<bool> written(static_cast<size_t>(block_size * num_blocks), false);
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[t] < 0) continue;
    written[slots[t]] = true;
    SCOPED_TRACE(::testing::Message() << "token " << t << " at slot " << slots[t]);
    // The cache holds exactly what the kernel wrote back to k (same rounded values) and a bit-exact copy of v.
    EXPECT_TRUE(all_close(k_cache.data() + slots[t] * kv_row, got_k.data() + t * kv_row, kv_row, 0.0, 0.0));
    EXPECT_TRUE(all_close(v_cache.data() + slots[t] * kv_row, v.data() + t * kv_row, kv_row, 0.0, 0.0));
  }
  for (int64_t slot = 0; slot < block_size * num_blocks; ++slot) {
    if (written[slot]) continue;
    const bool untouched = std::all_of(k_cache.begin() + slot * kv_row, k_cache.begin() + (slot + 1) * kv_row,
                                       [](float x) { return std::isnan(x); }) &&
                           std::all_of(v_cache.begin() + slot * kv_row, v_cache.begin() + (slot + 1) * kv_row,
                                       [](float x) { return std::isnan(x); });
    EXPECT_TRUE(untouched) << "slot " << slot << " was written though no token maps to it";
  }
}

TEST(CudaRopeWriteKv, F32Gqa) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<float>(11, 6, 2, 64); }
TEST(CudaRopeWriteKv, F32OddHeadDim) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<float>(13, 3, 3, 18); }
TEST(CudaRopeWriteKv, Bf16Gqa) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<__nv_bfloat16>(17, 8, 2, 128); }
TEST(CudaRopeWriteKv, F16) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<__half>(5, 4, 1, 256); }

}  // namespace
}  // namespace lattice::testing::cuda
