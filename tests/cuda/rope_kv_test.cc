// RoPE fused with the paged KV write on the GPU against kernels/cpu rope_write_kv_f32: rotated q out of the fused
// qkv rows, and the cache rows at each token's slot, with slots scattered over an odd block size and a padding
// token whose slot (-1) must stay untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

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
  const int64_t block_size = 7, num_blocks = 5, cache_slots = block_size * num_blocks;
  const int64_t half = head_dim / 2, kv_row = kv_heads * head_dim, q_row = heads * head_dim;
  ASSERT_LE(tokens, cache_slots);

  const auto qkv = round_to<T>(random_values(static_cast<size_t>(tokens * (q_row + 2 * kv_row)), rng));
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / head_dim));
  std::uniform_int_distribution<int32_t> pos_dist(0, 100000);  // long contexts: the angle needs f64
  std::vector<int32_t> positions(tokens);
  for (auto& p : positions) p = pos_dist(rng);
  std::vector<int64_t> all_slots(static_cast<size_t>(cache_slots));
  std::iota(all_slots.begin(), all_slots.end(), 0);
  std::shuffle(all_slots.begin(), all_slots.end(), rng);
  std::vector<int64_t> slots(all_slots.begin(), all_slots.begin() + tokens);
  slots[tokens / 2] = -1;  // a padding token: q rotated, nothing stored

  // Oracle in f32 on the same rounded inputs; the kernel rounds each rotated value once to T.
  std::vector<float> want_q(static_cast<size_t>(tokens * q_row));
  std::vector<float> want_k(static_cast<size_t>(cache_slots * kv_row), NAN), want_v(want_k.size(), NAN);
  const kernels::PagedLayout layout{heads, kv_heads, head_dim, block_size};
  cpu::rope_write_kv_f32(qkv.data(), positions.data(), inv_freq.data(), slots.data(), want_k.data(), want_v.data(),
                         want_q.data(), tokens, layout);

  auto d_qkv = to_device<T>(qkv);
  auto d_positions = ints_to_device(positions);
  auto d_inv_freq = to_device<float>(inv_freq);
  auto d_slots = ints_to_device(slots);
  DeviceBuffer<T> d_k_cache(want_k.size()), d_v_cache(want_v.size()), d_q_out(want_q.size());
  gpu::rope_write_kv(d_qkv.get(), d_positions.get(), d_inv_freq.get(), d_slots.get(), d_k_cache.get(),
                     d_v_cache.get(), d_q_out.get(), tokens, layout, nullptr);

  // Rotation of O(1) values: f32 differs by sin/cos and fma ordering only; bf16/f16 by the output rounding.
  const auto got_q = d_q_out.download();
  EXPECT_TRUE(all_close(got_q.data(), want_q.data(), static_cast<int64_t>(want_q.size()), Tolerance<T>::rtol,
                        Tolerance<T>::atol));
  const auto k_cache = d_k_cache.download(), v_cache = d_v_cache.download();
  for (int64_t slot = 0; slot < cache_slots; ++slot) {
    SCOPED_TRACE(::testing::Message() << "slot " << slot);
    const float* want_k_row = want_k.data() + slot * kv_row;
    if (std::isnan(want_k_row[0])) {  // no token maps here: the poison (NaN) must remain
      EXPECT_TRUE(std::all_of(k_cache.begin() + slot * kv_row, k_cache.begin() + (slot + 1) * kv_row,
                              [](float x) { return std::isnan(x); }));
      EXPECT_TRUE(std::all_of(v_cache.begin() + slot * kv_row, v_cache.begin() + (slot + 1) * kv_row,
                              [](float x) { return std::isnan(x); }));
      continue;
    }
    EXPECT_TRUE(all_close(k_cache.data() + slot * kv_row, want_k_row, kv_row, Tolerance<T>::rtol, Tolerance<T>::atol));
    // v is copied, bit for bit.
    EXPECT_TRUE(all_close(v_cache.data() + slot * kv_row, want_v.data() + slot * kv_row, kv_row, 0.0, 0.0));
  }
  // qkv is an input only.
  EXPECT_TRUE(all_close(d_qkv.download().data(), qkv.data(), static_cast<int64_t>(qkv.size()), 0.0, 0.0));
}

TEST(CudaRopeWriteKv, F32Gqa) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<float>(11, 6, 2, 64); }
TEST(CudaRopeWriteKv, F32OddHeadDim) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<float>(13, 3, 3, 18); }
TEST(CudaRopeWriteKv, Bf16Gqa) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<__nv_bfloat16>(17, 8, 2, 128); }
TEST(CudaRopeWriteKv, F16) { LATTICE_SKIP_WITHOUT_CUDA(); check_rope_write_kv<__half>(5, 4, 1, 256); }

}  // namespace
}  // namespace lattice::testing::cuda
