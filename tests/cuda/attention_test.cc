// Paged attention on the GPU against kernels/cpu paged_attention_f32, over shuffled block tables, grouped-query
// heads and contexts that span several decode partitions. The decode launcher picks the kernel
// (paged_attention_decode_kernel): f16/bf16 with GQA groups of 4+ at head_dim 64/80/96/128/256 take the tensor-core
// kernel, smaller groups at head_dim 64/128/256 the grouped SIMT kernel, the rest the SIMT kernel. Each prefill
// case runs through every prefill kernel that takes it (wgmma on sm_90a, mma.sync, SIMT) and through the launcher.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <numeric>
#include <optional>
#include <type_traits>

#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_prefill.cuh"
#include "kernels/cuda/paged_attention_prefill_mma.cuh"
#include "kernels/cuda/paged_attention_prefill_wgmma.cuh"
#include "tests/cuda/attention_tolerance.h"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace cpu = kernels::cpu;
namespace gpu = kernels::cuda;

// Attention averages V rows with softmax weights: in f32 the GPU and CPU differ by summation order over up to
// a few thousand positions (CPU sums the denominator in f64), a few 1e-7 relative, so f32 keeps 1e-5; bf16/f16
// inputs are identical on both sides and the SIMT kernels' math is f32, so only the output rounding remains
// (Tolerance<T>). The tensor-core kernels also round the softmax weights to T (AttentionTolerance<T>).

struct Seq {
  int64_t q_len;
  int64_t context_len;
};

// A block id whose slots lie far outside any cache: a kernel that reads a block table entry past a sequence's
// context and follows it faults (an illegal address, reported by the launch or the download). Its slots (id x block
// size, at most 2^30 for the tests' blocks of up to 32) stay below 2^31, so a kernel that keeps slots in int32 (the
// tensor-core decode kernel) also lands far outside instead of wrapping around into the cache.
constexpr int32_t kPoisonBlock = 1 << 25;

// A batch of sequences over one randomly filled cache, blocks handed out in shuffled order. With extra_blocks
// the block tables get that many more columns than any context needs (graph-style padding), all poisoned.
template <typename T>
struct Batch {
  kernels::PagedLayout layout;
  std::vector<Seq> seqs;
  int64_t max_blocks = 0, tokens = 0;
  std::vector<float> q, k_cache, v_cache;
  std::vector<int32_t> block_tables;  // [seqs, max_blocks]
  std::vector<int32_t> q_begins, q_lens, context_lens;

  Batch(const kernels::PagedLayout& l, std::vector<Seq> s, std::mt19937& rng, int64_t extra_blocks = 0)
      : layout(l), seqs(std::move(s)) {
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
    max_blocks += extra_blocks;
    std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    block_tables.assign(static_cast<size_t>(seqs.size() * max_blocks), kPoisonBlock);
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

  std::vector<float> reference(float scale, int64_t window) const {
    std::vector<float> out(q.size());
    cpu::paged_attention_f32(q.data(), k_cache.data(), v_cache.data(), block_tables.data(), max_blocks,
                             q_begins.data(), q_lens.data(), context_lens.data(), static_cast<int64_t>(seqs.size()),
                             out.data(), layout, scale, window);
    return out;
  }
};

// extra_context raises max_context_len above every context (more partitions in the grid than any sequence
// fills), extra_blocks pads the block tables with poisoned columns: the bounds a captured CUDA graph fixes.
// window > 0: a sliding window of that many positions (the CPU oracle masks the same window). forced: run that kernel
// instead of the launcher's choice.
template <typename T>
void check_decode(const kernels::PagedLayout& layout, const std::vector<int64_t>& context_lens,
                  int64_t extra_context = 0, int64_t extra_blocks = 0, int64_t window = 0,
                  std::optional<gpu::DecodeKernel> forced = std::nullopt) {
  const uint32_t seed = fresh_seed();
  // The test's operands are cudaMalloc'd (256-byte aligned), so the layout alone picks the kernel.
  const gpu::DecodeKernel kernel = forced.value_or(gpu::paged_attention_decode_kernel<T>(layout, /*aligned16=*/true));
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", heads " << layout.heads
                                    << "/" << layout.kv_heads << ", head_dim " << layout.head_dim << ", block "
                                    << layout.block_size << ", window " << window << ", kernel "
                                    << gpu::decode_kernel_name(kernel));
  std::mt19937 rng(seed);
  std::vector<Seq> seqs;
  for (int64_t len : context_lens) seqs.push_back({1, len});
  Batch<T> batch(layout, seqs, rng, extra_blocks);
  // Blocks wholly before a sliding window may have been freed (paged_attention_decode's contract): poisoned like the
  // padding, so following one faults (the CPU oracle reads from the window's first position on).
  if (window > 0)
    for (size_t s = 0; s < seqs.size(); ++s)
      for (int64_t b = 0; b < std::max<int64_t>(0, context_lens[s] - window) / layout.block_size; ++b)
        batch.block_tables[s * batch.max_blocks + b] = kPoisonBlock;
  const float scale = 1.0f / std::sqrt(static_cast<float>(layout.head_dim));
  const auto want = batch.reference(scale, window);

  auto d_q = to_device<T>(batch.q);
  auto d_k = to_device<T>(batch.k_cache);
  auto d_v = to_device<T>(batch.v_cache);
  auto d_tables = ints_to_device(batch.block_tables);
  auto d_lens = ints_to_device(batch.context_lens);
  DeviceBuffer<T> d_out(batch.q.size());
  const int64_t num_seqs = static_cast<int64_t>(seqs.size());
  const int64_t max_len = *std::max_element(context_lens.begin(), context_lens.end()) + extra_context;
  const size_t workspace_bytes = gpu::paged_attention_decode_workspace_bytes(num_seqs, layout, max_len);
  DeviceBuffer<float> workspace(workspace_bytes / sizeof(float));
  gpu::paged_attention_decode(d_q.get(), d_k.get(), d_v.get(), d_tables.get(), batch.max_blocks, d_lens.get(),
                              num_seqs, max_len, d_out.get(), layout, scale, window, workspace.get(),
                              workspace_bytes, nullptr, forced);
  const auto got = d_out.download();
  const bool rounds_weights = kernel == gpu::DecodeKernel::tensor_core;
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()),
                        rounds_weights ? AttentionTolerance<T>::rtol : Tolerance<T>::rtol,
                        rounds_weights ? AttentionTolerance<T>::atol : Tolerance<T>::atol));
}

// Host logic (runs without a GPU): the dispatch rule paged_attention_decode.cu states, so a change to it is a
// deliberate one and the tests below keep covering each kernel.
TEST(CudaPagedAttentionDecode, DispatchByDtypeGroupAndHeadDim) {
  using gpu::DecodeKernel;
  auto kernel = [](auto dtype, const kernels::PagedLayout& layout, bool aligned = true) {
    return gpu::paged_attention_decode_kernel<decltype(dtype)>(layout, aligned);
  };
  EXPECT_EQ(kernel(__nv_bfloat16{}, {32, 8, 128, 16}), DecodeKernel::tensor_core);  // Llama-3-8B, group 4
  EXPECT_EQ(kernel(__half{}, {16, 1, 64, 32}), DecodeKernel::tensor_core);          // group 16
  EXPECT_EQ(kernel(__half{}, {8, 2, 80, 16}), DecodeKernel::tensor_core);           // head dims 80, 96, 256
  EXPECT_EQ(kernel(__nv_bfloat16{}, {20, 2, 96, 16}), DecodeKernel::tensor_core);
  EXPECT_EQ(kernel(__nv_bfloat16{}, {8, 1, 256, 16}), DecodeKernel::tensor_core);
  EXPECT_EQ(kernel(__nv_bfloat16{}, {6, 2, 128, 16}), DecodeKernel::grouped_simt);  // group 3
  EXPECT_EQ(kernel(__half{}, {4, 4, 256, 16}), DecodeKernel::grouped_simt);         // group 1
  EXPECT_EQ(kernel(__nv_bfloat16{}, {4, 2, 80, 16}), DecodeKernel::simt);           // group 2 at head_dim 80
  EXPECT_EQ(kernel(__half{}, {8, 2, 72, 16}), DecodeKernel::simt);                  // head_dim 72
  EXPECT_EQ(kernel(float{}, {32, 8, 128, 16}), DecodeKernel::simt);
  EXPECT_EQ(kernel(__nv_bfloat16{}, {32, 8, 128, 16}, /*aligned=*/false), DecodeKernel::simt);
}

// Host logic: a kernel named for a layout it cannot run is refused before anything is launched.
TEST(CudaPagedAttentionDecode, NamedKernelOutsideItsLayoutsIsAnError) {
  const int32_t len = 1;
  auto run = [&](auto dtype, const kernels::PagedLayout& layout, gpu::DecodeKernel kernel) {
    using T = decltype(dtype);
    gpu::paged_attention_decode<T>(nullptr, nullptr, nullptr, nullptr, 1, &len, 1, 1, nullptr, layout, 1.0f, 0,
                                   nullptr, 0, nullptr, kernel);
  };
  try {
    run(float{}, {32, 8, 128, 16}, gpu::DecodeKernel::tensor_core);
    ADD_FAILURE() << "f32 on the tensor-core kernel was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the tensor_core kernel cannot take f32 elements at head_dim 128"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(run(__half{}, {8, 2, 80, 16}, gpu::DecodeKernel::grouped_simt), Error);
  EXPECT_THROW(run(__nv_bfloat16{}, {8, 2, 72, 16}, gpu::DecodeKernel::tensor_core), Error);
}

// Host arithmetic (runs without a GPU): the workspace reserved for the largest step covers every step of fewer
// sequences and fewer positions, although smaller batches cut their contexts into smaller partitions. A step
// writes, per sequence, query head and partition, head_dim partial outputs plus a max and a sum (f32).
TEST(CudaPagedAttentionDecode, WorkspaceCoversEverySmallerStep) {
  const kernels::PagedLayout layout{32, 8, 128, 16};
  EXPECT_EQ(gpu::paged_attention_decode_partition(1), 128);
  EXPECT_EQ(gpu::paged_attention_decode_partition(4), 256);
  EXPECT_EQ(gpu::paged_attention_decode_partition(16), gpu::kDecodePartition);
  for (int64_t max_seqs : {1, 3, 4, 15, 16, 64, 256})
    for (int64_t max_context : {1, 128, 129, 512, 513, 2048, 8192}) {
      const size_t reserved = gpu::paged_attention_decode_workspace_bytes(max_seqs, layout, max_context);
      for (int64_t seqs = 1; seqs <= max_seqs; ++seqs)
        for (int64_t context : {1, 127, 128, 129, 256, 257, 511, 512, 513, 2048, 8192}) {
          if (context > max_context) continue;
          const int64_t partition = gpu::paged_attention_decode_partition(seqs);
          const int64_t splits = (context + partition - 1) / partition;
          const size_t step = splits > 1 ? sizeof(float) * seqs * layout.heads * splits * (layout.head_dim + 2) : 0;
          EXPECT_GE(reserved, step) << "reserved for " << max_seqs << " x " << max_context << ", step " << seqs
                                    << " x " << context;
        }
    }
}

// The SIMT kernel. One partition, partitions of unequal length, and a sequence much shorter than the longest (its
// unused partitions must not enter the merge); f32, head_dim 96 below group 4, head_dim 80 below group 4.
TEST(CudaPagedAttentionDecode, F32Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<float>({8, 2, 64, 16}, {1, 37, 1300, 512, 513});
}
TEST(CudaPagedAttentionDecode, F32HeadDim96OddBlocks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<float>({6, 6, 96, 5}, {3, 777});
}
TEST(CudaPagedAttentionDecode, F32PaddedBounds) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<float>({8, 2, 64, 16}, {700, 3}, 1100, 70);
}
TEST(CudaPagedAttentionDecode, Bf16HeadDim80Group2Fallback) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 4, 80, 16}, {600, 1});
}

// The tensor-core kernel: Llama-3-8B's layout (group 4) over context lengths on block, 64-position tile and
// partition edges, 1 .. 2049; 16 sequences, so 512-position partitions (the tests with fewer sequences run 128 and
// 256). A context of 1 or 65 leaves warps of the last tile without a position.
TEST(CudaPagedAttentionDecode, Bf16Gqa4ContextEdges) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({32, 8, 128, 16},
                              {1, 2, 15, 16, 17, 65, 511, 512, 513, 1023, 1024, 1025, 2047, 2048, 2049, 1500});
}
TEST(CudaPagedAttentionDecode, F16Gqa4ContextEdges) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({32, 8, 128, 16}, {1, 17, 63, 64, 512, 513, 2049, 300});
}
// One sequence: 128-position partitions, 17 of them at 2049 positions, two tiles each.
TEST(CudaPagedAttentionDecode, Bf16Gqa4OneSequence) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({32, 8, 128, 16}, {2049});
}
// Groups 8, 5 (11 zero rows in the mma tile), 12, 16 (a full tile), 32 (two blocks per KV head) and 24 over two KV
// heads (each KV head's second block holds 8 query heads from kv_head * 24 + 16, 8 zero rows).
TEST(CudaPagedAttentionDecode, Bf16Group8Block32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({16, 2, 128, 32}, {1537, 31, 32, 33});
}
TEST(CudaPagedAttentionDecode, F16Group5HeadDim64) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({10, 2, 64, 16}, {700, 1, 129});
}
TEST(CudaPagedAttentionDecode, F16Group12Block32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({24, 2, 128, 32}, {900, 40});
}
TEST(CudaPagedAttentionDecode, Bf16Group16) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({16, 1, 128, 16}, {1025, 3, 256, 257});
}
TEST(CudaPagedAttentionDecode, F16Group32HeadDim64) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({32, 1, 64, 16}, {800, 2});
}
TEST(CudaPagedAttentionDecode, Bf16Group24TwoKvHeads) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({48, 2, 64, 16}, {1025, 5, 130});
}
// Head dims 80, 96 and 256 (two warps, 32-position tiles).
TEST(CudaPagedAttentionDecode, Bf16HeadDim80Group4) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 2, 80, 16}, {600, 1, 1025});
}
TEST(CudaPagedAttentionDecode, F16HeadDim96Group8Block32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({16, 2, 96, 32}, {2049, 33, 64});
}
TEST(CudaPagedAttentionDecode, F16HeadDim256) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({4, 1, 256, 32}, {1025, 9});
}
TEST(CudaPagedAttentionDecode, Bf16HeadDim256Group8) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({16, 2, 256, 16}, {700, 1, 31, 32, 33});
}
// Blocks of 7 positions: the positions of one K/V tile lie in different, scattered blocks.
TEST(CudaPagedAttentionDecode, Bf16OddBlocks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 2, 64, 7}, {1000, 3});
}

// The grouped SIMT kernel: groups 1, 2 and 3 (a padded head slot in the block), head dims 64, 128 and 256.
TEST(CudaPagedAttentionDecode, F16Group1HeadDim64) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({4, 4, 64, 16}, {1100, 5, 64});
}
TEST(CudaPagedAttentionDecode, Bf16Group2ContextEdges) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 4, 128, 16}, {1, 16, 17, 511, 512, 513, 2048, 2049});
}
TEST(CudaPagedAttentionDecode, F16Group3HeadDim64) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({6, 2, 64, 16}, {513, 9});
}
TEST(CudaPagedAttentionDecode, Bf16Group1HeadDim256Block32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({2, 2, 256, 32}, {1025, 1});
}

// Graph-style bounds on each kernel: max_context_len far above the longest context (grid partitions no sequence
// reaches, which must exit without writing) and block tables with poisoned columns wider than needed.
TEST(CudaPagedAttentionDecode, Bf16PaddedBounds) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({32, 8, 128, 16}, {1, 600, 1025}, 1500, 100);
}
TEST(CudaPagedAttentionDecode, F16PaddedBoundsGroup8HeadDim64) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({8, 1, 64, 32}, {7, 500}, 3000, 100);
}
TEST(CudaPagedAttentionDecode, Bf16PaddedBoundsHeadDim256Group4) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 2, 256, 16}, {300, 2}, 2000, 130);
}
TEST(CudaPagedAttentionDecode, F16PaddedBoundsHeadDim80Group16) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({16, 1, 80, 16}, {1, 64, 65, 1000}, 1048, 66);
}
TEST(CudaPagedAttentionDecode, F16PaddedBoundsGroup2) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({4, 2, 128, 16}, {9, 700}, 2500, 80);
}

// Sliding windows (Mistral): contexts shorter than, equal to and just past the window, and windows that start
// mid-partition, mid-tile and mid-block, so the leading partitions of long contexts hold nothing visible and the
// merge must skip them. f32 takes the SIMT kernel (5 sequences: 256-position partitions), groups of 4+ the
// tensor-core kernel, group 2 the grouped SIMT kernel.
TEST(CudaPagedAttentionDecode, F32SlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<float>({8, 2, 64, 16}, {1, 37, 1300, 200, 201}, 0, 0, /*window=*/200);
}
TEST(CudaPagedAttentionDecode, Bf16Gqa4SlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({32, 8, 128, 16}, {1, 299, 300, 301, 511, 1025, 2049, 4000}, 0, 0, /*window=*/300);
}
TEST(CudaPagedAttentionDecode, F16SlidingWindowPaddedBounds) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({8, 1, 64, 32}, {7, 900}, 1500, 60, /*window=*/64);
}
TEST(CudaPagedAttentionDecode, F16HeadDim96SlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({20, 4, 96, 16}, {50, 129, 2049}, 0, 0, /*window=*/100);
}
TEST(CudaPagedAttentionDecode, Bf16Group2SlidingWindowPaddedBounds) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 4, 64, 16}, {5, 600, 1800}, 700, 50, /*window=*/333);
}
// Each kernel named on one shape (Llama-3-8B's layout, padded bounds, a window), against the same oracle: the
// tensor-core kernel, the grouped SIMT kernel at group 4 and, on 16-bit elements, the SIMT kernel; and the grouped
// SIMT kernel at group 8, two blocks per KV head.
TEST(CudaPagedAttentionDecode, Bf16EachKernelOnGqa4) {
  LATTICE_SKIP_WITHOUT_CUDA();
  for (gpu::DecodeKernel kernel :
       {gpu::DecodeKernel::tensor_core, gpu::DecodeKernel::grouped_simt, gpu::DecodeKernel::simt})
    check_decode<__nv_bfloat16>({32, 8, 128, 16}, {1, 513, 2049}, 600, 40, /*window=*/1000, kernel);
}
TEST(CudaPagedAttentionDecode, F16GroupedSimtGroup8) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__half>({16, 2, 64, 16}, {700, 5}, 0, 0, /*window=*/0, gpu::DecodeKernel::grouped_simt);
}

// A window of one position: each query sees only its own key, the output is its V row.
TEST(CudaPagedAttentionDecode, Bf16WindowOfOne) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_decode<__nv_bfloat16>({8, 2, 128, 16}, {1, 2, 700}, 0, 0, /*window=*/1);
}

// The prefill kernels a case runs through: each one directly, then the launcher's choice. A kernel that cannot
// take the case (f32 or head_dim 72 on the tensor-core kernels, wgmma without a compute capability 9.0 device)
// is left out, and a tensor-core kernel that declines a case it should take fails the test.
enum class PrefillKernel { wgmma, mma, simt, launcher };

const char* prefill_kernel_name(PrefillKernel kernel) {
  switch (kernel) {
    case PrefillKernel::wgmma: return "wgmma kernel";
    case PrefillKernel::mma: return "mma.sync kernel";
    case PrefillKernel::simt: return "SIMT kernel";
    case PrefillKernel::launcher: return "paged_attention_prefill";
  }
  return "?";
}

bool head_dim_in(int64_t head_dim, std::initializer_list<int64_t> dims) {
  return std::find(dims.begin(), dims.end(), head_dim) != dims.end();
}

// Runs one kernel over the batch's device operands; false when the kernel cannot take the case.
template <typename T>
bool run_prefill(PrefillKernel kernel, const T* q, const T* k, const T* v, const int32_t* tables, int64_t max_blocks,
                 const int32_t* begins, const int32_t* q_lens, const int32_t* lens, int64_t num_seqs,
                 int64_t max_q_len, T* out, const kernels::PagedLayout& layout, float scale, int64_t window) {
  const int w = static_cast<int>(window);
  switch (kernel) {
    case PrefillKernel::wgmma:
      if constexpr (std::is_same_v<T, float>) {
        return false;
      } else {
        if (!gpu::detail::paged_attention_prefill_wgmma_available()) return false;
        const bool ran = gpu::detail::paged_attention_prefill_wgmma(q, k, v, tables, max_blocks, begins, q_lens, lens,
                                                                    num_seqs, max_q_len, out, layout, scale, w, nullptr);
        EXPECT_EQ(ran, head_dim_in(layout.head_dim, {64, 128, 256}));
        return ran;
      }
    case PrefillKernel::mma:
      if constexpr (std::is_same_v<T, float>) {
        return false;
      } else {
        const bool ran = gpu::detail::paged_attention_prefill_mma(q, k, v, tables, max_blocks, begins, q_lens, lens,
                                                                  num_seqs, max_q_len, out, layout, scale, w, nullptr);
        EXPECT_EQ(ran, head_dim_in(layout.head_dim, {64, 80, 96, 128, 256}));
        return ran;
      }
    case PrefillKernel::simt:
      gpu::detail::paged_attention_prefill_simt(q, k, v, tables, max_blocks, begins, q_lens, lens, num_seqs, max_q_len,
                                                out, layout, scale, w, nullptr);
      return true;
    case PrefillKernel::launcher:
      gpu::paged_attention_prefill(q, k, v, tables, max_blocks, begins, q_lens, lens, num_seqs, max_q_len, out, layout,
                                   scale, window, nullptr);
      return true;
  }
  return false;
}

// Every kernel that takes the case against the CPU oracle, on an output poisoned with NaN before each run (a
// row a kernel forgets fails). Tolerances: the tensor-core kernels (and the launcher, which may pick one) round
// the softmax weights to T (AttentionTolerance); the SIMT kernel keeps them in f32 (Tolerance<T>).
template <typename T>
void check_prefill(const kernels::PagedLayout& layout, const std::vector<Seq>& seqs, int64_t extra_q = 0,
                   int64_t window = 0) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<T>() << ", heads " << layout.heads
                                    << "/" << layout.kv_heads << ", head_dim " << layout.head_dim << ", block "
                                    << layout.block_size << ", window " << window);
  std::mt19937 rng(seed);
  const Batch<T> batch(layout, seqs, rng, /*extra_blocks=*/1);
  const float scale = 1.0f / std::sqrt(static_cast<float>(layout.head_dim));
  const auto want = batch.reference(scale, window);
  auto d_q = to_device<T>(batch.q);
  auto d_k = to_device<T>(batch.k_cache);
  auto d_v = to_device<T>(batch.v_cache);
  auto d_tables = ints_to_device(batch.block_tables);
  auto d_begins = ints_to_device(batch.q_begins);
  auto d_q_lens = ints_to_device(batch.q_lens);
  auto d_lens = ints_to_device(batch.context_lens);
  DeviceBuffer<T> d_out(batch.q.size());
  int64_t max_q_len = extra_q;
  for (const auto& s : seqs) max_q_len = std::max(max_q_len, s.q_len + extra_q);
  const std::vector<float> poison(batch.q.size(), NAN);
  for (PrefillKernel kernel : {PrefillKernel::wgmma, PrefillKernel::mma, PrefillKernel::simt, PrefillKernel::launcher}) {
    SCOPED_TRACE(prefill_kernel_name(kernel));
    d_out.upload(poison);
    if (!run_prefill<T>(kernel, d_q.get(), d_k.get(), d_v.get(), d_tables.get(), batch.max_blocks, d_begins.get(),
                        d_q_lens.get(), d_lens.get(), static_cast<int64_t>(seqs.size()), max_q_len, d_out.get(), layout,
                        scale, window))
      continue;
    const auto got = d_out.download();
    const bool f32_weights = kernel == PrefillKernel::simt;
    EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()),
                          f32_weights ? Tolerance<T>::rtol : AttentionTolerance<T>::rtol,
                          f32_weights ? Tolerance<T>::atol : AttentionTolerance<T>::atol));
  }
}

// A compute capability 9.0 device (H100/H200) runs the wgmma kernel: the sm_90a build must have reached it, or
// every other prefill test would silently leave it out.
TEST(CudaPagedAttentionPrefill, WgmmaKernelOnHopper) {
  LATTICE_SKIP_WITHOUT_CUDA();
  int device = 0, major = 0, minor = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), cudaSuccess);
  if (major != 9 || minor != 0) GTEST_SKIP() << "compute capability " << major << "." << minor << " is not 9.0";
  EXPECT_TRUE(gpu::detail::paged_attention_prefill_wgmma_available());
}

// A fresh prompt, a chunk after 60 cached tokens, a decode token, and a prompt whose length is not a tile
// multiple: every row sees a different causal prefix. f32 and head_dim 72 take the SIMT kernel.
TEST(CudaPagedAttentionPrefill, F32Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<float>({6, 2, 64, 16}, {{17, 17}, {40, 100}, {1, 33}, {5, 5}});
}
TEST(CudaPagedAttentionPrefill, F32HeadDim72OddBlocks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<float>({3, 3, 72, 7}, {{33, 70}, {2, 2}});
}
TEST(CudaPagedAttentionPrefill, F16HeadDim72Fallback) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({4, 2, 72, 16}, {{33, 70}, {1, 9}});
}

// The tensor-core kernel. Group 4 packs 32 tokens into a 128-row tile; the chunk after 171 cached tokens starts
// mid-tile and mid-block, and a decode token rides along (a chunk of 1).
TEST(CudaPagedAttentionPrefill, Bf16Gqa) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({8, 2, 128, 16}, {{129, 129}, {31, 300}});
}
TEST(CudaPagedAttentionPrefill, F16Gqa4ChunkedAfterCached) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({32, 8, 128, 16}, {{85, 256}, {1, 700}, {64, 64}});
}
// A long causal prompt: many K/V tiles per block, only the diagonal ones masked, upper ones skipped.
TEST(CudaPagedAttentionPrefill, F16LongPromptGroup4) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({4, 1, 128, 16}, {{1000, 1000}});
}
TEST(CudaPagedAttentionPrefill, F16Group1HeadDim64) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({4, 4, 64, 16}, {{100, 100}, {1, 37}, {64, 64}});
}
TEST(CudaPagedAttentionPrefill, Bf16HeadDim80Group4) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({8, 2, 80, 16}, {{77, 77}, {30, 200}});
}
TEST(CudaPagedAttentionPrefill, F16HeadDim96Group8Block32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({16, 2, 96, 32}, {{65, 65}, {3, 130}, {1, 1}});
}
// Group 12: a 128-row tile holds 10 2/3 tokens, so some tokens' heads straddle two tiles; blocks of 5 positions.
TEST(CudaPagedAttentionPrefill, F16Group12OddBlocks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({12, 1, 64, 5}, {{20, 20}, {5, 50}});
}
// 256-wide heads: 32-position K/V tiles and the opt-in shared memory on both kernels.
TEST(CudaPagedAttentionPrefill, F16HeadDim256) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({4, 2, 256, 32}, {{50, 90}, {1, 1}});
}
TEST(CudaPagedAttentionPrefill, Bf16HeadDim256Group8Chunked) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({8, 1, 256, 16}, {{70, 170}, {2, 2}});
}
// Sliding windows on both prefill kernels: windows shorter than a K/V tile (so whole tiles before them are
// skipped and the tile holding a window's start is masked from below), a chunk after cached tokens whose window
// starts inside the cache, a window of one, and a window longer than every context (masks nothing).
TEST(CudaPagedAttentionPrefill, F32SlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<float>({6, 2, 64, 16}, {{100, 100}, {40, 300}, {1, 33}}, 0, /*window=*/23);
}
TEST(CudaPagedAttentionPrefill, F16LongPromptSlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({4, 1, 128, 16}, {{1000, 1000}}, 0, /*window=*/100);
}
TEST(CudaPagedAttentionPrefill, Bf16Gqa4ChunkedSlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({32, 8, 128, 16}, {{85, 256}, {1, 700}, {64, 64}}, 0, /*window=*/70);
}
TEST(CudaPagedAttentionPrefill, F16Group8WindowOfOne) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({16, 2, 64, 16}, {{130, 130}, {3, 40}}, 0, /*window=*/1);
}
TEST(CudaPagedAttentionPrefill, Bf16HeadDim256WindowPastContext) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({8, 1, 256, 16}, {{70, 170}, {2, 2}}, 0, /*window=*/4096);
}

// max_q_len above every chunk (graph-style): the grid's extra tiles exit without writing.
TEST(CudaPagedAttentionPrefill, Bf16PaddedMaxQLen) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({8, 2, 64, 16}, {{40, 90}, {1, 5}}, 100);
}

// Llama-3-8B's layout, a 512-token chunk after 3584 cached tokens (the benchmark's chunked shape; one KV head to
// keep the CPU oracle fast): 4096 positions, 32 wgmma K/V tiles, so both stages are reused many times.
TEST(CudaPagedAttentionPrefill, Bf16Gqa4Chunk512After3584) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({4, 1, 128, 16}, {{512, 4096}});
}
// Odd chunk sizes after odd cached lengths, group 8 and blocks of 32: tiles end mid-block, mid-group and
// mid-warpgroup, next to a decode token.
TEST(CudaPagedAttentionPrefill, F16Group8Block32OddChunks) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({16, 2, 64, 32}, {{77, 1661}, {1, 999}, {300, 301}});
}
TEST(CudaPagedAttentionPrefill, Bf16Group1Block32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({4, 4, 128, 32}, {{200, 200}, {45, 500}});
}
TEST(CudaPagedAttentionPrefill, F16Group8HeadDim128ChunkedSlidingWindow) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__half>({8, 1, 128, 16}, {{333, 1500}, {129, 129}}, 0, /*window=*/257);
}
TEST(CudaPagedAttentionPrefill, Bf16HeadDim256Group4Block32Long) {
  LATTICE_SKIP_WITHOUT_CUDA();
  check_prefill<__nv_bfloat16>({4, 1, 256, 32}, {{400, 400}, {31, 700}});
}

}  // namespace
}  // namespace lattice::testing::cuda
