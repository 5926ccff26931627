// Paged attention on the GPU (split-K decode and tiled causal prefill) against kernels/cpu paged_attention_f32,
// over shuffled block tables, grouped-query heads and contexts that span several decode partitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_prefill.cuh"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace cpu = kernels::cpu;
namespace gpu = kernels::cuda;

// Attention averages V rows with softmax weights: in f32 the GPU and CPU differ by summation order over up to
// a few thousand positions (CPU sums the denominator in f64), a few 1e-7 relative, so f32 keeps 1e-5; bf16/f16
// inputs are identical on both sides and the math is f32, so only the output rounding remains.

struct Seq {
  int64_t q_len;
  int64_t context_len;
};

// A batch of sequences over one randomly filled cache, blocks handed out in shuffled order.
template <typename T>
struct Batch {
  kernels::PagedLayout layout;
  std::vector<Seq> seqs;
  int64_t max_blocks = 0, tokens = 0;
  std::vector<float> q, k_cache, v_cache;
  std::vector<int32_t> block_tables;  // [seqs, max_blocks]
  std::vector<int32_t> q_begins, q_lens, context_lens;

  Batch(const kernels::PagedLayout& l, std::vector<Seq> s, std::mt19937& rng) : layout(l), seqs(std::move(s)) {
    int64_t total_blocks = 0;
    for (const auto& seq : seqs) {
      const int64_t blocks = (seq.context_len + layout.block_size - 1) / layout.block_size;
      max_blocks = std::max(max_blocks, blocks);
      total_blocks += blocks;
      q_begins.push_back(static_cast<int32_t>(tokens));
      q_lens.push_back(static_cast<int32_t>(seq.q_len));
      context_lens.push_back(static_cast<int32_t>(seq.context_len));
      tokens += seq.q_len;
    }
    total_blocks += 3;  // blocks nobody uses
    std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    block_tables.assign(static_cast<size_t>(seqs.size() * max_blocks), 0);
    size_t next = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t blocks = (seqs[s].context_len + layout.block_size - 1) / layout.block_size;
      for (int64_t b = 0; b < blocks; ++b) block_tables[s * max_blocks + b] = ids[next++];
    }
    const size_t cache = static_cast<size_t>(total_blocks * layout.block_size * layout.kv_heads * layout.head_dim);
    k_cache = round_to<T>(random_values(cache, rng));
    v_cache = round_to<T>(random_values(cache, rng));
    q = round_to<T>(random_values(static_cast<size_t>(tokens * layout.heads * layout.head_dim), rng));
  }

  std::vector<float> reference(float scale) const {
    std::vector<float> out(q.size());
    cpu::paged_attention_f32(q.data(), k_cache.data(), v_cache.data(), block_tables.data(), max_blocks,
                             q_begins.data(), q_lens.data(), context_lens.data(), static_cast<int64_t>(seqs.size()),
                             out.data(), layout, scale);
    return out;
  }
};

template <typename T>
void check_decode(const kernels::PagedLayout& layout, const std::vector<int64_t>& context_lens) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", heads " << layout.heads
                                    << "/" << layout.kv_heads << ", head_dim " << layout.head_dim);
  std::mt19937 rng(seed);
  std::vector<Seq> seqs;
  for (int64_t len : context_lens) seqs.push_back({1, len});
  const Batch<T> batch(layout, seqs, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(layout.head_dim));
  const auto want = batch.reference(scale);

  auto d_q = to_device<T>(batch.q);
  auto d_k = to_device<T>(batch.k_cache);
  auto d_v = to_device<T>(batch.v_cache);
  auto d_tables = ints_to_device(batch.block_tables);
  auto d_lens = ints_to_device(batch.context_lens);
  DeviceBuffer<T> d_out(batch.q.size());
  const int64_t num_seqs = static_cast<int64_t>(seqs.size());
  const int64_t max_len = *std::max_element(context_lens.begin(), context_lens.end());
  const size_t workspace_bytes = gpu::paged_attention_decode_workspace_bytes(num_seqs, layout, max_len);
  DeviceBuffer<float> workspace(workspace_bytes / sizeof(float));
  gpu::paged_attention_decode(d_q.get(), d_k.get(), d_v.get(), d_tables.get(), batch.max_blocks, d_lens.get(),
                              num_seqs, max_len, d_out.get(), layout, scale, workspace.get(),
                              workspace_bytes, nullptr);
  const auto got = d_out.download();
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()), Tolerance<T>::rtol,
                        Tolerance<T>::atol));
}

// One partition, partitions of unequal length, and a sequence much shorter than the longest (its unused
// partitions must not enter the merge).
TEST(CudaPagedAttentionDecode, F32Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<float>({8, 2, 64, 16}, {1, 37, 1300, 512, 513});
}
TEST(CudaPagedAttentionDecode, F32HeadDim96OddBlocks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<float>({6, 6, 96, 5}, {3, 777});
}
TEST(CudaPagedAttentionDecode, Bf16Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({32, 8, 128, 16}, {2049, 15, 600});
}
TEST(CudaPagedAttentionDecode, F16HeadDim256) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({4, 1, 256, 32}, {1025, 9});
}

template <typename T>
void check_prefill(const kernels::PagedLayout& layout, const std::vector<Seq>& seqs) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", heads " << layout.heads
                                    << "/" << layout.kv_heads << ", head_dim " << layout.head_dim);
  std::mt19937 rng(seed);
  const Batch<T> batch(layout, seqs, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(layout.head_dim));
  const auto want = batch.reference(scale);

  auto d_q = to_device<T>(batch.q);
  auto d_k = to_device<T>(batch.k_cache);
  auto d_v = to_device<T>(batch.v_cache);
  auto d_tables = ints_to_device(batch.block_tables);
  auto d_begins = ints_to_device(batch.q_begins);
  auto d_q_lens = ints_to_device(batch.q_lens);
  auto d_lens = ints_to_device(batch.context_lens);
  DeviceBuffer<T> d_out(batch.q.size());
  int64_t max_q_len = 0;
  for (const auto& s : seqs) max_q_len = std::max(max_q_len, s.q_len);
  gpu::paged_attention_prefill(d_q.get(), d_k.get(), d_v.get(), d_tables.get(), batch.max_blocks, d_begins.get(),
                               d_q_lens.get(), d_lens.get(), static_cast<int64_t>(seqs.size()), max_q_len,
                               d_out.get(), layout, scale, nullptr);
  const auto got = d_out.download();
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()), Tolerance<T>::rtol,
                        Tolerance<T>::atol));
}

// A fresh prompt, a chunk after 60 cached tokens, a decode token, and a prompt whose length is not a tile
// multiple: every row sees a different causal prefix.
TEST(CudaPagedAttentionPrefill, F32Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<float>({6, 2, 64, 16}, {{17, 17}, {40, 100}, {1, 33}, {5, 5}});
}
TEST(CudaPagedAttentionPrefill, F32HeadDim72OddBlocks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<float>({3, 3, 72, 7}, {{33, 70}, {2, 2}});
}
TEST(CudaPagedAttentionPrefill, Bf16Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({8, 2, 128, 16}, {{129, 129}, {31, 300}});
}
// 256-wide heads need more than 48 KiB of shared memory (the opt-in path).
TEST(CudaPagedAttentionPrefill, F16HeadDim256) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({4, 2, 256, 32}, {{50, 90}, {1, 1}});
}

}  // namespace
}  // namespace lattice::testing::cuda
