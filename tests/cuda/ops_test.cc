// Every op of engine/ops run through the ops API on cuda:0 against the same op on the CPU (the oracle) on
// identical inputs (values rounded to the dtype first, so both sides see the same numbers). Outputs are NaN-
// poisoned, so an element an op forgets to write fails. Skips with the runtime's reason without a GPU.
//
// Tolerances (relative, with the same absolute floor near zero):
//  f32: both sides compute in f32 and differ in summation order and expf/sincos ulps only: 1e-5.
//  bf16 / f16: the GPU computes in f32 from the same rounded inputs and rounds its output once (2^-8, 2^-11
//    relative); add_rms_norm rounds the stored residual too, two roundings in all: 1e-2 and 2e-3
//    (Tolerance<T> in cuda_test_utils.h). Reductions (norms over <= 4k elements, attention over <= 2k
//    positions, dot products over <= 512 terms) run in f32 on both sides, so their length adds only f32
//    summation error (~sqrt(n) * 2^-24 relative), far below the output rounding.
//  linear: the products of rounded inputs are exact in f32, so the outputs (~sqrt(k) in size) differ by
//    summation order: an absolute floor of 1e-5 * sqrt(k), plus the output's rounding for a half output.
//  Gathers and conversions copy or round identically on both sides: exact (conversions bit for bit).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "engine/cuda/device_context.h"
#include "engine/ops/attention.h"
#include "engine/ops/moe.h"
#include "engine/ops/ops.h"
#include "tests/cuda/attention_tolerance.h"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

const ops::ExecContext kCpu = ops::ExecContext::cpu();
const Device kGpu = Device::cuda(0);

struct Tol {
  double rtol, atol;
};

Tol tolerance(DType dtype) {
  switch (dtype) {
    case DType::bf16: return {Tolerance<__nv_bfloat16>::rtol, Tolerance<__nv_bfloat16>::atol};
    case DType::f16: return {Tolerance<__half>::rtol, Tolerance<__half>::atol};
    default: return {Tolerance<float>::rtol, Tolerance<float>::atol};
  }
}

// Prefill attention in f16/bf16 rounds its softmax weights (tests/cuda/attention_tolerance.h).
Tol attention_tolerance(DType dtype) {
  switch (dtype) {
    case DType::bf16: return {AttentionTolerance<__nv_bfloat16>::rtol, AttentionTolerance<__nv_bfloat16>::atol};
    case DType::f16: return {AttentionTolerance<__half>::rtol, AttentionTolerance<__half>::atol};
    default: return {AttentionTolerance<float>::rtol, AttentionTolerance<float>::atol};
  }
}

// One device context for the whole binary (stream, GemmLt, scratch), made on first use.
DeviceContext& device() {
  static const std::unique_ptr<DeviceContext> context = std::make_unique<DeviceContext>(0);
  return *context;
}

// f32 host values converted to `dtype` (on the CPU), then copied to the GPU.
Tensor to_gpu(const Tensor& values, DType dtype) {
  Tensor typed = Tensor::empty(values.shape(), dtype);
  ops::convert(kCpu, values, typed);
  return typed.to(kGpu);
}

// A GPU tensor as f32 host values, once the stream has run everything enqueued.
Tensor to_host_f32(const Tensor& gpu) {
  device().synchronize();
  const Tensor host = gpu.to(Device::cpu());
  Tensor out = Tensor::empty(host.shape(), DType::f32);
  ops::convert(kCpu, host, out);
  return out;
}

// The values `dtype` holds nearest to `values` (what both sides compute from).
Tensor rounded(const Tensor& values, DType dtype) {
  Tensor typed = Tensor::empty(values.shape(), dtype), back = Tensor::empty(values.shape(), DType::f32);
  ops::convert(kCpu, values, typed);
  ops::convert(kCpu, typed, back);
  return back;
}

Tensor random_rounded(std::vector<int64_t> shape, DType dtype, std::mt19937& rng, float scale = 1.0f) {
  return rounded(random_tensor(std::move(shape), rng, scale), dtype);
}

Tensor gpu_poisoned(std::vector<int64_t> shape, DType dtype) { return to_gpu(poisoned_tensor(std::move(shape)), dtype); }

::testing::AssertionResult matches(const Tensor& gpu, const Tensor& want, Tol tol) {
  const Tensor got = to_host_f32(gpu);
  if (got.shape() != want.shape()) return ::testing::AssertionFailure() << got.describe() << " vs " << want.describe();
  return all_close(got.data<float>(), want.data<float>(), got.numel(), tol.rtol, tol.atol);
}

class OpsOnCuda : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    LATTICE_SKIP_WITHOUT_CUDA();
    device();  // registers cuda memory before any tensor is made there
    seed_ = fresh_seed();
    rng_.seed(seed_);
  }
  const ops::ExecContext& gpu() { return device().exec(); }
  DType dtype() const { return GetParam(); }
  Tol tol() const { return tolerance(dtype()); }
  std::string trace() const { return (::testing::Message() << "seed " << seed_ << ", " << dtype_name(dtype())).GetString(); }

  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

TEST_P(OpsOnCuda, Embedding) {
  SCOPED_TRACE(trace());
  const Tensor table = random_rounded({37, 77}, dtype(), rng_);
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 41, 5, 17, 5, 40, 3, 22, 4}, {9});
  Tensor want = poisoned_tensor({9, 77});
  ops::embedding(kCpu, table, ids, 4, want);  // a shard of ids [4, 41): 0, 41 and 3 give zero rows
  for (const DType out_dtype : {dtype(), DType::f32}) {
    Tensor out = gpu_poisoned({9, 77}, out_dtype);
    ops::embedding(gpu(), to_gpu(table, dtype()), ids.to(kGpu), 4, out);
    EXPECT_TRUE(matches(out, want, {0, 0})) << "out " << dtype_name(out_dtype);
  }
}

// Qwen3's q/k norms in place on the q and k heads of a fused qkv output: 5 q heads and 2 k heads of 128 (one
// warp per head, 4 per block: 7 tokens x 5 heads is not a multiple of 4) and of 72 (lanes past 64 idle); v stays.
TEST_P(OpsOnCuda, HeadRmsNormOnTheQAndKHeads) {
  SCOPED_TRACE(trace());
  for (const int64_t head_dim : {128, 72}) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << head_dim);
    const int64_t tokens = 7, heads = 5, kv_heads = 2, width = (heads + 2 * kv_heads) * head_dim;
    Tensor want = random_rounded({tokens, width}, dtype(), rng_, 3.0f);
    const Tensor q_w = random_rounded({head_dim}, dtype(), rng_, 0.5f), k_w = random_rounded({head_dim}, dtype(), rng_);
    Tensor got = to_gpu(want, dtype());
    ops::head_rms_norm(kCpu, want, 0, heads, q_w, 1e-6f);
    ops::head_rms_norm(kCpu, want, heads * head_dim, kv_heads, k_w, 1e-6f);
    ops::head_rms_norm(gpu(), got, 0, heads, to_gpu(q_w, dtype()), 1e-6f);
    ops::head_rms_norm(gpu(), got, heads * head_dim, kv_heads, to_gpu(k_w, dtype()), 1e-6f);
    EXPECT_TRUE(matches(got, want, tol()));
  }
}

TEST_P(OpsOnCuda, RmsNormAndAddRmsNorm) {
  SCOPED_TRACE(trace());
  const int64_t shapes[][2] = {{7, 1003}, {3, 4099}, {1, 64}};
  for (const auto& [rows, dim] : shapes) {
    SCOPED_TRACE(::testing::Message() << rows << "x" << dim);
    const Tensor x = random_rounded({rows, dim}, dtype(), rng_, 2.0f), residual = random_rounded({rows, dim}, dtype(), rng_);
    const Tensor weight = random_rounded({dim}, dtype(), rng_, 0.5f);
    Tensor want = poisoned_tensor({rows, dim});
    ops::rms_norm(kCpu, x, weight, 1e-5f, want);
    Tensor out = gpu_poisoned({rows, dim}, dtype());
    ops::rms_norm(gpu(), to_gpu(x, dtype()), to_gpu(weight, dtype()), 1e-5f, out);
    EXPECT_TRUE(matches(out, want, tol()));

    // Fused with the residual add, out written over x as the layer loop does.
    Tensor want_out = x.clone(), want_residual = residual.clone();
    ops::add_rms_norm(kCpu, want_out, want_residual, weight, 1e-5f, want_out);
    Tensor g_x = to_gpu(x, dtype()), g_residual = to_gpu(residual, dtype());
    ops::add_rms_norm(gpu(), g_x, g_residual, to_gpu(weight, dtype()), 1e-5f, g_x);
    EXPECT_TRUE(matches(g_residual, want_residual, tol()));
    EXPECT_TRUE(matches(g_x, want_out, tol()));
  }
}

TEST_P(OpsOnCuda, Add) {
  SCOPED_TRACE(trace());
  const Tensor x = random_rounded({5, 999}, dtype(), rng_), y = random_rounded({5, 999}, dtype(), rng_);
  Tensor want = x.clone();
  ops::add_(kCpu, want, y);
  Tensor g_x = to_gpu(x, dtype());
  ops::add_(gpu(), g_x, to_gpu(y, dtype()));
  EXPECT_TRUE(matches(g_x, want, tol()));
}

// With and without the bias epilogue, and f32 logits from half inputs.
TEST_P(OpsOnCuda, Linear) {
  SCOPED_TRACE(trace());
  const int64_t shapes[][3] = {{1, 256, 512}, {13, 131, 67}, {64, 96, 128}};
  for (const auto& [m, n, k] : shapes) {
    SCOPED_TRACE(::testing::Message() << "m " << m << ", n " << n << ", k " << k);
    const Tensor x = random_rounded({m, k}, dtype(), rng_), w = random_rounded({n, k}, dtype(), rng_);
    const Tensor bias = random_rounded({n}, dtype(), rng_);
    const double floor = 1e-5 * std::sqrt(static_cast<double>(k));
    for (const bool with_bias : {false, true}) {
      Tensor want = poisoned_tensor({m, n});
      ops::linear(kCpu, x, w, with_bias ? &bias : nullptr, want);
      const Tensor g_bias = to_gpu(bias, dtype());
      Tensor out = gpu_poisoned({m, n}, dtype());
      ops::linear(gpu(), to_gpu(x, dtype()), to_gpu(w, dtype()), with_bias ? &g_bias : nullptr, out);
      EXPECT_TRUE(matches(out, want, {tol().rtol, floor})) << "bias " << with_bias;
    }
    if (dtype() == DType::f32) continue;
    Tensor want = poisoned_tensor({m, n});
    ops::linear(kCpu, x, w, nullptr, want);
    Tensor logits = gpu_poisoned({m, n}, DType::f32);
    ops::linear(gpu(), to_gpu(x, dtype()), to_gpu(w, dtype()), nullptr, logits);
    EXPECT_TRUE(matches(logits, want, {tolerance(DType::f32).rtol, floor})) << "f32 logits";
  }
}

TEST_P(OpsOnCuda, SiluMulOfFusedGateUp) {
  SCOPED_TRACE(trace());
  const Tensor gate_up = random_rounded({9, 2 * 1001}, dtype(), rng_, 3.0f);
  Tensor want = poisoned_tensor({9, 1001});
  ops::silu_mul(kCpu, gate_up, want);
  Tensor out = gpu_poisoned({9, 1001}, dtype());
  ops::silu_mul(gpu(), to_gpu(gate_up, dtype()), out);
  EXPECT_TRUE(matches(out, want, tol()));
}

// Scattered slots over an odd block size, one padding token (slot -1), GQA heads.
TEST_P(OpsOnCuda, RopeWriteKv) {
  SCOPED_TRACE(trace());
  const int64_t tokens = 11, heads = 8, kv_heads = 2, head_dim = 128, block_size = 7, num_blocks = 3;
  const Tensor qkv = random_rounded({tokens, (heads + 2 * kv_heads) * head_dim}, dtype(), rng_);
  std::vector<float> inv_freq(head_dim / 2);
  for (int64_t i = 0; i < head_dim / 2; ++i)
    inv_freq[i] = static_cast<float>(std::pow(500000.0, -2.0 * static_cast<double>(i) / head_dim));
  std::vector<int32_t> positions(tokens);
  std::uniform_int_distribution<int32_t> pos_dist(0, 100000);
  for (auto& p : positions) p = pos_dist(rng_);
  std::vector<int64_t> slots(block_size * num_blocks);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng_);
  slots.resize(tokens);
  slots[4] = -1;
  const Tensor t_positions = Tensor::from_vector(positions, {tokens}), t_slots = Tensor::from_vector(slots, {tokens});
  const Tensor t_inv_freq = Tensor::from_vector(inv_freq, {head_dim / 2});

  Tensor want_q = poisoned_tensor({tokens, heads, head_dim});
  Tensor want_k = poisoned_tensor({num_blocks, block_size, kv_heads, head_dim}), want_v = want_k.clone();
  ops::rope_write_kv(kCpu, qkv, t_positions, t_inv_freq, t_slots, want_k, want_v, want_q);
  Tensor q_out = gpu_poisoned(want_q.shape(), dtype());
  Tensor k_cache = gpu_poisoned(want_k.shape(), dtype()), v_cache = gpu_poisoned(want_v.shape(), dtype());
  ops::rope_write_kv(gpu(), to_gpu(qkv, dtype()), t_positions.to(kGpu), t_inv_freq.to(kGpu), t_slots.to(kGpu),
                     k_cache, v_cache, q_out);
  EXPECT_TRUE(matches(q_out, want_q, tol()));
  // Slots no token names hold NaN on both sides: compare the written ones, and that the rest stayed NaN.
  const Tensor got_k = to_host_f32(k_cache), got_v = to_host_f32(v_cache);
  const int64_t row = kv_heads * head_dim;
  for (int64_t slot = 0; slot < block_size * num_blocks; ++slot) {
    SCOPED_TRACE(::testing::Message() << "slot " << slot);
    const bool written = std::find(slots.begin(), slots.end(), slot) != slots.end();
    for (const auto& [got, want] : {std::pair{&got_k, &want_k}, std::pair{&got_v, &want_v}}) {
      const float* g = got->data<float>() + slot * row;
      if (written)
        EXPECT_TRUE(all_close(g, want->data<float>() + slot * row, row, tol().rtol, tol().atol));
      else
        EXPECT_TRUE(std::all_of(g, g + row, [](float v) { return std::isnan(v); }));
    }
  }
}

TEST_P(OpsOnCuda, GatherRows) {
  SCOPED_TRACE(trace());
  const Tensor x = random_rounded({6, 333}, dtype(), rng_);
  const Tensor index = Tensor::from_vector(std::vector<int32_t>{5, 0, 5, 2, 3, 6, -1}, {7});  // 6, -1: zero rows
  Tensor want = poisoned_tensor({7, 333});
  ops::gather_rows(kCpu, x, index, want);
  Tensor out = gpu_poisoned({7, 333}, dtype());
  ops::gather_rows(gpu(), to_gpu(x, dtype()), index.to(kGpu), out);
  EXPECT_TRUE(matches(out, want, {0, 0}));
}

// The MoE ops: 300 tokens (three route blocks) over 64 experts, top 6, with and without renormalisation; the
// grouping for all experts and for one expert-parallel rank's range [16, 48) (slots, positions and counts equal
// the CPU's exactly: same order); the combine in the dtype. Router weights are f32 on both sides (expf ulps:
// the f32 tolerance); equal ids assume no two probabilities of a token within an ulp (random logits).
TEST_P(OpsOnCuda, MoeRouteGroupAndCombine) {
  SCOPED_TRACE(trace());
  const int64_t tokens = 300, experts = 64, top_k = 6, dim = 200;
  const Tensor logits = random_tensor({tokens, experts}, rng_, 2.0f);
  for (const bool renormalize : {false, true}) {
    Tensor ids = Tensor::empty({tokens, top_k}, DType::i32), weights = Tensor::empty({tokens, top_k}, DType::f32);
    ops::moe_route(kCpu, logits, renormalize, ids, weights);
    Tensor gpu_ids = Tensor::empty({tokens, top_k}, DType::i32, kGpu), gpu_weights = gpu_poisoned({tokens, top_k}, DType::f32);
    ops::moe_route(gpu(), logits.to(kGpu), renormalize, gpu_ids, gpu_weights);
    device().synchronize();
    EXPECT_EQ(to_vector<int32_t>(gpu_ids), to_vector<int32_t>(ids)) << "renormalize " << renormalize;
    EXPECT_TRUE(matches(gpu_weights, weights, tolerance(DType::f32))) << "renormalize " << renormalize;

    for (const auto& [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{0, experts}, {16, 48}}) {
      Tensor rows = Tensor::empty({tokens * top_k}, DType::i32), positions = Tensor::empty({tokens, top_k}, DType::i32);
      Tensor offsets = Tensor::empty({end - begin + 1}, DType::i64);
      const std::vector<int64_t> counts = ops::moe_group(kCpu, ids, begin, end, rows, positions, offsets);
      Tensor gpu_rows = Tensor::empty({tokens * top_k}, DType::i32, kGpu);
      Tensor gpu_positions = Tensor::empty({tokens, top_k}, DType::i32, kGpu);
      Tensor gpu_offsets = Tensor::empty({end - begin + 1}, DType::i64, kGpu);
      EXPECT_EQ(ops::moe_group(gpu(), ids.to(kGpu), begin, end, gpu_rows, gpu_positions, gpu_offsets), counts);
      EXPECT_EQ(to_vector<int64_t>(gpu_offsets), counts);
      const int64_t slots = counts.back();
      EXPECT_EQ(to_vector<int32_t>(gpu_rows.rows(0, slots)), to_vector<int32_t>(rows.rows(0, slots)));
      EXPECT_EQ(to_vector<int32_t>(gpu_positions), to_vector<int32_t>(positions));

      const Tensor expert_out = random_rounded({slots, dim}, dtype(), rng_);
      Tensor want = poisoned_tensor({tokens, dim});
      ops::moe_combine(kCpu, expert_out, positions, weights, want);
      Tensor out = gpu_poisoned({tokens, dim}, dtype());
      ops::moe_combine(gpu(), to_gpu(expert_out, dtype()), positions.to(kGpu), weights.to(kGpu), out);
      EXPECT_TRUE(matches(out, want, tol())) << "experts [" << begin << ", " << end << ")";
    }
  }
}

// Host metadata of a batch over one shuffled cache, with padded bounds: `extra_blocks` zero columns in every
// block table row and max_context_len / max_q_len above the real ones, as a captured graph fixes them.
struct AttentionCase {
  std::vector<std::pair<int64_t, int64_t>> seqs;  // (q_len, context_len)
  int64_t extra_blocks, extra_context, extra_q;
};

void check_attention(const ops::ExecContext& gpu, DType dtype, Tol tol, const AttentionCase& c, std::mt19937& rng) {
  const int64_t heads = 8, kv_heads = 2, head_dim = 64, block_size = 16;
  const int64_t seqs = static_cast<int64_t>(c.seqs.size());
  int64_t max_blocks = 0, tokens = 0, total_blocks = 3, max_q = 0, max_context = 0;  // 3 blocks nobody uses
  for (const auto& [q_len, context] : c.seqs) {
    const int64_t blocks = (context + block_size - 1) / block_size;
    max_blocks = std::max(max_blocks, blocks);
    total_blocks += blocks;
    tokens += q_len;
    max_q = std::max(max_q, q_len);
    max_context = std::max(max_context, context);
  }
  max_blocks += c.extra_blocks;
  std::vector<int32_t> ids(total_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(seqs * max_blocks, 0), q_begins, q_lens, context_lens;
  size_t next = 0;
  for (int64_t s = 0; s < seqs; ++s) {
    const auto [q_len, context] = c.seqs[s];
    for (int64_t b = 0; b < (context + block_size - 1) / block_size; ++b) tables[s * max_blocks + b] = ids[next++];
    q_begins.push_back(static_cast<int32_t>(std::accumulate(q_lens.begin(), q_lens.end(), 0)));
    q_lens.push_back(static_cast<int32_t>(q_len));
    context_lens.push_back(static_cast<int32_t>(context));
  }
  ops::AttentionInputs host;
  host.block_tables = Tensor::from_vector(tables, {seqs, max_blocks});
  host.q_begins = Tensor::from_vector(q_begins, {seqs});
  host.q_lens = Tensor::from_vector(q_lens, {seqs});
  host.context_lens = Tensor::from_vector(context_lens, {seqs});
  host.max_q_len = max_q + c.extra_q;
  host.max_context_len = max_context + c.extra_context;
  ASSERT_LE(host.max_context_len, max_blocks * block_size);
  const Tensor q = random_rounded({tokens, heads, head_dim}, dtype, rng);
  const Tensor k_cache = random_rounded({total_blocks, block_size, kv_heads, head_dim}, dtype, rng);
  const Tensor v_cache = random_rounded(k_cache.shape(), dtype, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  Tensor want = poisoned_tensor({tokens, heads, head_dim});
  ops::paged_attention(kCpu, q, k_cache, v_cache, host, scale, want);

  ops::AttentionInputs on_gpu = host;
  for (Tensor* t : {&on_gpu.block_tables, &on_gpu.q_begins, &on_gpu.q_lens, &on_gpu.context_lens}) *t = t->to(kGpu);
  Tensor out = gpu_poisoned(want.shape(), dtype);
  ops::paged_attention(gpu, to_gpu(q, dtype), to_gpu(k_cache, dtype), to_gpu(v_cache, dtype), on_gpu, scale, out);
  EXPECT_TRUE(matches(out, want, tol));
}

// Prefill chunks, a chunk after cached tokens and decode tokens in one step: the tiled prefill kernel.
TEST_P(OpsOnCuda, PagedAttentionMixedPrefillAndDecodeWithPaddedBounds) {
  SCOPED_TRACE(trace());
  const AttentionCase mixed{{{17, 17}, {1, 300}, {40, 100}, {1, 1}, {5, 5}}, 2, 30, 9};
  check_attention(gpu(), dtype(), attention_tolerance(dtype()), mixed, rng_);
}

// Every q_len 1: the split-K decode kernel, bounds padded past several partitions (graph-style),
// scratch from the device context.
TEST_P(OpsOnCuda, PagedAttentionDecodeWithPaddedBounds) {
  SCOPED_TRACE(trace());
  const int64_t heads = 8, head_dim = 64, max_context = 2048;
  device().reserve_scratch(ops::attention_scratch_bytes(4, heads, head_dim, max_context));
  check_attention(gpu(), dtype(), tol(), {{{1, 1300}, {1, 1}, {1, 513}, {1, 37}}, 47, max_context - 1300, 0}, rng_);
}

TEST_P(OpsOnCuda, PagedAttentionDecodeRefusesTooSmallAScratch) {
  const int64_t needed = static_cast<int64_t>(ops::attention_scratch_bytes(2, 8, 64, 1024));
  ASSERT_GT(needed, 0);  // several partitions: the merge needs scratch
  device().reserve_scratch(static_cast<size_t>(needed));
  ops::ExecContext small = gpu();
  small.scratch = small.scratch.rows(0, needed - 1);
  try {
    std::mt19937 rng(1);
    check_attention(small, dtype(), tol(), {{{1, 1000}, {1, 3}}, 2, 24, 0}, rng);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs " + std::to_string(needed) + " bytes of scratch"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, OpsOnCuda, ::testing::Values(DType::f32, DType::bf16, DType::f16),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

// Every ordered pair of f32, f16 and bf16 gives the CPU's bits exactly (round to nearest even on both sides),
// including f16's overflow to infinity, its subnormals, and ties.
TEST(ConvertOnCuda, EveryPairMatchesTheCpuBitForBit) {
  LATTICE_SKIP_WITHOUT_CUDA();
  const ops::ExecContext& gpu = device().exec();  // registers cuda memory before any tensor is made there
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  Tensor values = random_tensor({1000}, rng, 100.0f);
  const float special[] = {70000.0f, -65520.0f, 65519.0f, 1e-6f, -3e-8f, 1.0f + 1.0f / 512, 1.00390625f, 0.0f};
  std::copy(std::begin(special), std::end(special), values.data<float>());
  for (const DType from : {DType::f32, DType::f16, DType::bf16}) {
    Tensor source = Tensor::empty({1000}, from);
    ops::convert(kCpu, values, source);
    for (const DType to : {DType::f32, DType::f16, DType::bf16}) {
      Tensor want = Tensor::empty({1000}, to);
      ops::convert(kCpu, source, want);
      Tensor out = Tensor::empty({1000}, to, kGpu);
      ops::convert(gpu, source.to(kGpu), out);
      device().synchronize();
      const Tensor got = out.to(Device::cpu());
      EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << dtype_name(from) << " -> " << dtype_name(to);
    }
  }
}

}  // namespace
}  // namespace lattice::testing::cuda
