// Decode CUDA graphs on the GPU: a runner that replays captured graphs against one that runs every step eagerly
// (same GPU, same f32 weights) and against the CPU backend (the oracle), over decode steps of 1 to 40 sequences
// (the buckets 1, 2, 4, 8, 16, 32, 40), each sequence fed the CPU backend's greedy token (teacher forcing) so
// that every runner sees the same inputs; then whole generations through the Scheduler with graphs on.
#include <algorithm>
#include <functional>
#include <random>

#include "tests/gpu/gpu_engine.h"

namespace lattice::testing {
namespace {

// f32 on both backends, as logits_test.cc's kF32RelL2: rounding gives ~1e-6 relative; a graph that read stale
// metadata, a padding row that wrote a real slot, or the wrong bucket's logits gives ~1.
constexpr double kF32RelL2 = 1e-4;
// A greedy token is compared only where the CPU's top-1 margin exceeds the backends' logit difference by far:
// 1e-4 relative of |logits|_2 (~150 here) is 1.5e-2, so a margin of 0.1 cannot flip.
constexpr float kClearMargin = 0.1f;

class GpuGraphs : public GpuEngineTest {};

struct Sequences {
  std::vector<std::vector<int32_t>> tokens;  // every token so far
  std::vector<std::vector<int32_t>> tables;  // 8 blocks (128 positions) each, disjoint
};

// n sequences with random prompts of 3..40 tokens.
Sequences make_sequences(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  Sequences s;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> prompt(3 + rng() % 38);
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 512);
    s.tokens.push_back(prompt);
    std::vector<int32_t> table(8);
    for (int b = 0; b < 8; ++b) table[static_cast<size_t>(b)] = i * 8 + b;
    s.tables.push_back(table);
  }
  return s;
}

StepBatch prefill_batch(const Sequences& s) {
  StepBatch b;
  for (size_t i = 0; i < s.tokens.size(); ++i)
    b.seqs.push_back({static_cast<int64_t>(i), s.tokens[i], 0, s.tables[i], false});
  return b;
}

StepBatch decode_batch(const Sequences& s) {
  StepBatch b;
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    const int64_t pos = static_cast<int64_t>(s.tokens[i].size()) - 1;
    b.seqs.push_back({static_cast<int64_t>(i), {s.tokens[i].back()}, pos, s.tables[i], false});
  }
  return b;
}

int32_t argmax(const float* row) { return static_cast<int32_t>(std::max_element(row, row + 512) - row); }

std::vector<float> host_logits(const StepOutput& out, DeviceContext* ctx) {
  if (ctx) ctx->synchronize();
  return to_vector<float>(out.logits);
}

TEST_F(GpuGraphs, ReplayGivesTheEagerAndCpuLogitsForEveryBatchBucket) {
  constexpr int kMaxSeqs = 40;
  const RunnerLimits limits{512, kMaxSeqs};
  LlamaModel& gpu = gpu_model(DType::f32);
  KvCache graph_cache = cache_for(gpu, 8 * kMaxSeqs), eager_cache = cache_for(gpu, 8 * kMaxSeqs);
  KvCache cpu_cache = cache_for(*cpu_, 8 * kMaxSeqs);
  ModelRunner graphs(gpu, graph_cache, ctx_->exec(), limits), eager(gpu, eager_cache, ctx_->exec(), limits);
  ModelRunner cpu(*cpu_, cpu_cache, ops::ExecContext::cpu(), limits);
  const GraphCapture capture = graphs.capture_decode_graphs();
  ASSERT_TRUE(graphs.has_decode_graphs());
  EXPECT_EQ(graphs.decode_buckets().batch_sizes(), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 40}));
  EXPECT_EQ(capture.graphs, 7) << "7 batch buckets x 1 context bucket (tiny-llama has 512 positions)";
  std::fprintf(stderr, "captured %lld graphs in %.3f s, %lld bytes of device memory\n",
               static_cast<long long>(capture.graphs), capture.seconds, static_cast<long long>(capture.device_bytes));

  int64_t compared_tokens = 0;
  for (const int n : {1, 3, 8, 17, 40}) {  // buckets 1, 4, 8, 32, 40: padding from 0 to 15 rows
    Sequences s = make_sequences(n, 100 + static_cast<uint32_t>(n));
    graphs.forward(prefill_batch(s));  // prefill: eager in every runner
    eager.forward(prefill_batch(s));
    const StepOutput cpu_prefill = cpu.forward(prefill_batch(s));
    for (int i = 0; i < n; ++i)
      s.tokens[static_cast<size_t>(i)].push_back(argmax(cpu_prefill.next_token_logits(static_cast<size_t>(i)).data<float>()));
    for (int step = 0; step < 4; ++step) {
      const StepBatch batch = decode_batch(s);
      const int64_t replays = graphs.graph_steps();
      const std::vector<float> g = host_logits(graphs.forward(batch), ctx_.get());
      EXPECT_EQ(graphs.graph_steps(), replays + 1) << "a pure-decode step of " << n << " sequences replays a graph";
      const std::vector<float> e = host_logits(eager.forward(batch), ctx_.get());
      const StepOutput c = cpu.forward(batch);
      ASSERT_EQ(g.size(), static_cast<size_t>(n) * 512) << "padding rows stay out of the output";
      ASSERT_EQ(e.size(), g.size());
      for (int i = 0; i < n; ++i) {
        const float* want = c.logits.data<float>() + i * 512;
        EXPECT_LT(rel_l2(g.data() + i * 512, want, 512), kF32RelL2) << n << " seqs, step " << step << ", row " << i;
        EXPECT_LT(rel_l2(g.data() + i * 512, e.data() + i * 512, 512), kF32RelL2) << "graph vs eager, row " << i;
        std::vector<float> sorted(want, want + 512);
        std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
        const int32_t cpu_token = argmax(want);
        if (sorted[0] - sorted[1] > kClearMargin) {
          EXPECT_EQ(argmax(g.data() + i * 512), cpu_token)
              << "greedy token, " << n << " seqs, step " << step << ", row " << i;
          ++compared_tokens;
        }
        s.tokens[static_cast<size_t>(i)].push_back(cpu_token);
      }
    }
  }
  EXPECT_GT(compared_tokens, 50) << "most of the 276 decode tokens have a clear margin";
  EXPECT_EQ(eager.graph_steps(), 0);
}

// The KV the graph's steps wrote is the KV the eager steps wrote: after the same steps, both caches hold the same
// values at the batch's slots (to f32 rounding) and nothing anywhere else differs, so no padding row wrote.
TEST_F(GpuGraphs, ReplayWritesTheEagerKvAndNothingForPaddingRows) {
  const RunnerLimits limits{512, 16};
  LlamaModel& gpu = gpu_model(DType::f32);
  KvCache graph_cache = cache_for(gpu, 64), eager_cache = cache_for(gpu, 64);
  for (KvCache* cache : {&graph_cache, &eager_cache})  // zeroed, so that unwritten elements compare equal
    for (int64_t l = 0; l < cache->shape().layers; ++l) {
      cache->k(l) = Tensor::zeros(cache->k(l).shape(), cache->k(l).dtype(), cache->k(l).device());
      cache->v(l) = Tensor::zeros(cache->v(l).shape(), cache->v(l).dtype(), cache->v(l).device());
    }
  ModelRunner graphs(gpu, graph_cache, ctx_->exec(), limits), eager(gpu, eager_cache, ctx_->exec(), limits);
  graphs.capture_decode_graphs();
  Sequences s = make_sequences(5, 7);  // bucket 8: three padding rows
  graphs.forward(prefill_batch(s));
  eager.forward(prefill_batch(s));
  for (int step = 0; step < 3; ++step) {
    for (auto& t : s.tokens) t.push_back(static_cast<int32_t>((t.size() * 37) % 512));
    graphs.forward(decode_batch(s));
    eager.forward(decode_batch(s));
  }
  ctx_->synchronize();
  EXPECT_EQ(graphs.graph_steps(), 3);
  for (int64_t l = 0; l < graph_cache.shape().layers; ++l) {
    const std::vector<float> gk = to_vector<float>(graph_cache.k(l)), ek = to_vector<float>(eager_cache.k(l));
    const std::vector<float> gv = to_vector<float>(graph_cache.v(l)), ev = to_vector<float>(eager_cache.v(l));
    // Zeroed caches: an element written by one side only differs by its whole value.
    EXPECT_TRUE(all_close(gk.data(), ek.data(), static_cast<int64_t>(gk.size()), 1e-4, 1e-5)) << "K, layer " << l;
    EXPECT_TRUE(all_close(gv.data(), ev.data(), static_cast<int64_t>(gv.size()), 1e-4, 1e-5)) << "V, layer " << l;
  }
}

// Whole generations through the Scheduler and a LocalExecutor whose runner replays graphs (prefill eager, decode
// from graphs, sampling on the GPU) give the fixture's float64 greedy tokens: every greedy step of its cases has
// a top-1 margin of at least 0.0147 logits (expected.json), 100x the f32 logit error (generation_test.cc).
TEST_F(GpuGraphs, GreedyGenerationWithGraphsGivesTheReferenceTokens) {
  const nlohmann::json& cases = tiny_llama_expected()["cases"];
  const std::vector<Request> requests = fixture_greedy_requests(0);
  LlamaModel& gpu = gpu_model(DType::f32);
  KvCache cache = cache_for(gpu, 256);
  ModelRunner runner(gpu, cache, ctx_->exec(), RunnerLimits{512, kMaxSeqs});
  runner.capture_decode_graphs();
  SchedulerOptions options;
  options.max_top_k = kernels::cpu::kMaxTopK;
  Scheduler scheduler(gpu.lm_shape(), 256, static_cast<int32_t>(cache.shape().block_size), options);
  for (const Request& r : requests) scheduler.add(r);
  LocalExecutor executor(runner);
  const std::vector<RequestOutput> got = scheduler.run(executor);
  ASSERT_EQ(got.size(), requests.size());
  for (size_t c = 0; c < got.size(); ++c) {
    const auto want = cases[c]["greedy"].get<std::vector<int32_t>>();
    ASSERT_EQ(got[c].tokens.size(), want.size()) << "case " << c;
    for (size_t j = 0; j < want.size(); ++j) EXPECT_EQ(got[c].tokens[j].token, want[j]) << "case " << c << " token " << j;
  }
  EXPECT_GT(runner.graph_steps(), 0) << "the decode steps replayed graphs";
  EXPECT_GT(runner.eager_steps(), 0) << "the prefill steps ran eagerly";
}

// The launcher's order on a GPU: profile the graphs' memory before the KV cache exists, size the cache leaving
// cuda_graph_reserve of it, capture for real. The real capture must take no more than the reserve, and its graphs
// give the eager logits (they read the real cache, not the freed provisional one). A profile frees everything it
// made: a second one leaves free memory where the first left it, to the 2 MiB page (the first may load kernel
// modules, which stay).
TEST_F(GpuGraphs, TheProfileBeforeTheCacheReservesWhatTheRealCaptureTakes) {
  constexpr int kSeqs = 8;
  constexpr int64_t kPage = 2 << 20;
  const RunnerLimits limits{512, kSeqs};
  LlamaModel& gpu = gpu_model(DType::f32);
  auto profile_once = [&] {
    return ModelRunner::profile_decode_graphs(gpu, gpu.lm_shape().kv, DType::f32, ctx_->exec(), limits);
  };
  const GraphCapture profile = profile_once();
  EXPECT_EQ(profile.graphs, 4) << "batch buckets 1, 2, 4, 8 x one context bucket";
  const int64_t free_after_one = static_cast<int64_t>(ctx_->free_bytes());
  profile_once();
  EXPECT_GE(static_cast<int64_t>(ctx_->free_bytes()) + kPage, free_after_one) << "the profile freed what it made";

  KvCache graph_cache = cache_for(gpu, 8 * kSeqs), eager_cache = cache_for(gpu, 8 * kSeqs);
  ModelRunner graphs(gpu, graph_cache, ctx_->exec(), limits), eager(gpu, eager_cache, ctx_->exec(), limits);
  const GraphCapture real = graphs.capture_decode_graphs();
  std::fprintf(stderr, "profile: %lld bytes, reserve %zu, real capture %lld bytes\n",
               static_cast<long long>(profile.device_bytes), cuda_graph_reserve(profile.device_bytes),
               static_cast<long long>(real.device_bytes));
  EXPECT_LE(static_cast<size_t>(real.device_bytes), cuda_graph_reserve(profile.device_bytes));

  Sequences s = make_sequences(kSeqs, 7);
  graphs.forward(prefill_batch(s));
  const StepOutput first = eager.forward(prefill_batch(s));
  const std::vector<float> prefill = host_logits(first, ctx_.get());
  for (int i = 0; i < kSeqs; ++i) s.tokens[static_cast<size_t>(i)].push_back(argmax(&prefill[static_cast<size_t>(i) * 512]));
  const int64_t replays = graphs.graph_steps();
  const std::vector<float> replayed = host_logits(graphs.forward(decode_batch(s)), ctx_.get());
  const std::vector<float> expected = host_logits(eager.forward(decode_batch(s)), ctx_.get());
  EXPECT_EQ(graphs.graph_steps(), replays + 1) << "the decode step replayed a graph";
  ASSERT_EQ(replayed.size(), expected.size());
  EXPECT_LT(rel_l2(replayed.data(), expected.data(), static_cast<int64_t>(replayed.size())), kF32RelL2);
}

}  // namespace
}  // namespace lattice::testing
