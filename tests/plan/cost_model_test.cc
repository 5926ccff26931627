// The cost model behind `lattice plan` against hand-computed values (tiny-llama's shape: hidden 128, intermediate
// 352, 8 heads / 4 KV heads of 16, 4 layers, vocabulary 512), its memory accounting against the engine's own
// sizing functions and a loaded model, and the layout search (what does not fit, what each objective picks).
#include <gtest/gtest.h>

#include "engine/kv_cache/kv_cache.h"
#include "engine/ops/attention.h"
#include "models/llama.h"
#include "planner/layouts.h"

namespace lattice::planner {
namespace {

const std::string kTiny = std::string(LATTICE_TEST_DATA_DIR) + "/tiny-llama/f32";
const std::string kProfiles = std::string(LATTICE_TEST_DATA_DIR) + "/../../models/profiles";
const std::string kShapes = std::string(LATTICE_TEST_DATA_DIR) + "/../../scripts/models";

// 100 GB/s, 1 TFLOP/s; every op kind at half the bandwidth and a quarter of the FLOP/s; 2 us per launch.
HardwareProfile test_profile() {
  HardwareProfile p;
  p.name = "test";
  p.memory_bytes = 16.0 * (1 << 30);
  p.peak_memory_gbps = 100;
  p.peak_tflops = 1;
  for (OpKind k : {OpKind::gemm, OpKind::attention_decode, OpKind::attention_prefill, OpKind::elementwise})
    p.efficiency[k] = {0.5, 0.25};
  p.launch_overhead_us = 2;
  return p;
}

const OpCost& op_named(const StageCost& cost, const std::string& name) {
  for (const OpCost& op : cost.ops)
    if (op.name == name) return op;
  throw std::runtime_error("no op " + name);
}

TEST(CostModel, AnOpTakesTheSlowerOfItsBytesAndItsFlopsPlusLaunches) {
  OpCost op{"x", OpKind::gemm, 1e6, 0, 1e6, 1e6, 3, 0, {}};
  const OpCost memory_bound = cost_op(op, test_profile());
  // 2e6 bytes / 50 GB/s = 40 us > 1e6 flops / 0.25 TFLOP/s = 4 us; + 3 launches x 2 us.
  EXPECT_NEAR(memory_bound.seconds, 46e-6, 1e-12);
  EXPECT_NEAR(memory_bound.breakdown[Term::weights], 20e-6, 1e-12);
  EXPECT_NEAR(memory_bound.breakdown[Term::activations], 20e-6, 1e-12);
  EXPECT_NEAR(memory_bound.breakdown[Term::launch], 6e-6, 1e-12);
  op.flops = 1e8;  // 400 us of compute
  const OpCost compute_bound = cost_op(op, test_profile());
  EXPECT_NEAR(compute_bound.seconds, 406e-6, 1e-12);
  EXPECT_EQ(compute_bound.breakdown.largest(), Term::compute);
}

TEST(CostModel, RingAllReduceGatherAndSend) {
  const Link link{100, 1};  // 100 GB/s, 1 us per hop
  // 2 (n-1)/n x 1 MB / 100 GB/s = 15 us, + 2 (n-1) = 6 hops.
  EXPECT_NEAR(ring_all_reduce_seconds(1e6, 4, link), 21e-6, 1e-12);
  EXPECT_EQ(ring_all_reduce_seconds(1e6, 1, link), 0);
  EXPECT_NEAR(gather_seconds(1e6, 4, link), 3 * (10e-6 + 1e-6), 1e-12);
  EXPECT_NEAR(send_seconds(1e6, link), 11e-6, 1e-12);
}

TEST(CostModel, DecodeStepBytesAndFlopsOfTinyLlama) {
  const ModelConfig c = ModelConfig::from_file(kTiny + "/config.json");
  StageStep step{1, 4, true, true, {{1, 10}, {1, 10}}, 4};
  const StageCost cost = stage_step_cost(c, step, test_profile(), Link{10, 1});
  // qkv: 4 layers x [(8 + 2 x 4) x 16 = 256, 128] f32 weights; 2 tokens.
  EXPECT_EQ(op_named(cost, "qkv_proj").weight_bytes, 4.0 * 256 * 128 * 4);
  EXPECT_EQ(op_named(cost, "qkv_proj").flops, 4.0 * 2 * 2 * 256 * 128);
  EXPECT_EQ(op_named(cost, "qkv_proj").launches, 4);
  // Attention: each sequence reads 11 positions of K and V (4 KV heads x 16) per layer; 4 x 16 per (query, key)
  // pair per head, 8 heads, 2 x 11 pairs.
  EXPECT_EQ(op_named(cost, "attention_decode").kv_bytes, 4.0 * 22 * 2 * 4 * 16 * 4);
  EXPECT_EQ(op_named(cost, "attention_decode").flops, 4.0 * 4 * 22 * 8 * 16);
  EXPECT_EQ(op_named(cost, "gate_up_proj").weight_bytes, 4.0 * 704 * 128 * 4);
  EXPECT_EQ(op_named(cost, "down_proj").weight_bytes, 4.0 * 128 * 352 * 4);
  EXPECT_EQ(op_named(cost, "lm_head").flops, 2.0 * 2 * 512 * 128);
  // Every matmul weight is read once: the shard's weights less the embedding and the norms.
  double read = 0;
  for (const OpCost& op : cost.ops) read += op.weight_bytes;
  EXPECT_EQ(read, shard_weight_bytes(c, 1, 4, true, true, DType::f32) - (512.0 * 128 + 9 * 128) * 4);
  EXPECT_EQ(cost.breakdown[Term::all_reduce], 0);
}

TEST(CostModel, TensorParallelStepAddsTheAllReducesAndTheLogitGather) {
  const ModelConfig c = ModelConfig::from_file(kTiny + "/config.json");
  const Link link{10, 1};
  StageStep step{2, 4, true, true, {{1, 10}, {1, 10}}, 4};
  const StageCost cost = stage_step_cost(c, step, test_profile(), link);
  // 2 per layer + the embedding's = 9 all-reduces of [2 tokens, 128] f32: 2 x 1/2 x 1024 B / 10 GB/s + 2 hops;
  // the gather of [2, 256] f32 logit shards: 2048 B / 10 GB/s + 1 hop.
  const double ring = 1024 / 10e9 + 2e-6, gather = 2048 / 10e9 + 1e-6;
  EXPECT_NEAR(cost.breakdown[Term::all_reduce], 9 * ring + gather, 1e-15);
  EXPECT_EQ(op_named(cost, "qkv_proj").weight_bytes, 4.0 * 128 * 128 * 4);  // (4 + 2 x 2) x 16 rows each
}

TEST(CostModel, OneMicroBatchLeavesThePipelineIdleButOneStage) {
  const ModelConfig c = ModelConfig::from_file(kTiny + "/config.json");
  HardwareProfile hw = test_profile();
  hw.links["l"] = {10, 1};
  PlanRequest r;
  r.intra_node_link = "l";
  r.memory.dtype = DType::f32;
  const Breakdown b = decode_step(c, hw, 1, 2, 1, 100, r);
  const double s0 = stage_step_cost(c, {1, 2, true, false, {{1, 100}}, 4}, hw, {}).seconds();
  const double s1 = stage_step_cost(c, {1, 2, false, true, {{1, 100}}, 4}, hw, {}).seconds();
  const double send = 128 * 4 / 10e9 + 1e-6;
  // The step goes stage 0 -> send -> stage 1 -> tokens back (one hop's latency); only the slower stage's work is
  // not bubble.
  EXPECT_NEAR(b.total(), s0 + s1 + send + 1e-6, 1e-12);
  EXPECT_NEAR(b[Term::pipeline], s0 + s1 + send + 1e-6 - std::max(s0, s1), 1e-12);
}

TEST(MemoryPlan, MatchesTheEngineSizing) {
  const ModelConfig c = ModelConfig::from_file(kTiny + "/config.json");
  const HardwareProfile hw = test_profile();
  MemoryOptions o;
  o.dtype = DType::f32;
  const RankMemory m = rank_memory(c, 1, 0, 4, hw, o);
  ASSERT_TRUE(m.fits) << m.why_not;
  // Weights: what loading the checkpoint reads (f32 in, f32 kept), also for a pipeline stage's half.
  EXPECT_EQ(m.weight_bytes, static_cast<double>(LlamaModel::load(kTiny)->weight_bytes_read()));
  ModelPartition second_half;
  second_half.layer_begin = 2;
  EXPECT_EQ(shard_weight_bytes(c, 1, 2, false, true, DType::f32),
            static_cast<double>(LlamaModel::load(kTiny, second_half)->weight_bytes_read()));
  EXPECT_EQ(m.scratch_bytes, static_cast<double>(ops::attention_scratch_bytes(256, 8, 16, 512)));
  LmShape shape{512, 512, 128, {4, 4, 16, 16}};
  EXPECT_EQ(m.runner_bytes, static_cast<double>(ModelRunner::buffer_bytes(shape, DType::f32, o.limits)));
  // LlamaModel::reserve(512): x, pending [512, 128]; qkv [512, 256]; q, attn [512, 128]; gate_up [512, 704];
  // act [512, 352]; selected [512, 128]; f32.
  EXPECT_EQ(m.activation_bytes, 512.0 * (128 * 2 + 256 + 128 * 2 + 704 + 352 + 128) * 4);
  const int64_t block = 2 * 4 * 16 * 4 * 16 * 4;  // K and V, 4 layers, 16 tokens, 4 heads x 16, f32
  const double used = m.weight_bytes + m.scratch_bytes + m.activation_bytes;
  const size_t total = static_cast<size_t>(hw.memory_bytes);
  const size_t budget = gpu_kv_budget(total, total - static_cast<size_t>(used), 0.9, static_cast<size_t>(m.runner_bytes), block);
  EXPECT_EQ(m.kv_blocks, static_cast<int64_t>(budget / block));
  EXPECT_EQ(m.kv_tokens, m.kv_blocks * 16);
  EXPECT_EQ(m.kv_bytes, static_cast<double>(m.kv_blocks * block));
}

TEST(Layouts, SeventyBillionOnOneH200DoesNotFit) {
  const ModelConfig c = ModelConfig::from_file(kShapes + "/llama-3-70b/config.json");
  const HardwareProfile hw = HardwareProfile::load("h200", kProfiles);
  PlanRequest r;
  r.intra_node_link = hw.intra_node_link;
  r.inter_node_link = hw.inter_node_link;
  std::vector<LayoutResult> one = plan_layouts(c, hw, r);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_FALSE(one[0].fits);
  EXPECT_NE(one[0].note.find("does not fit"), std::string::npos) << one[0].note;
  EXPECT_EQ(recommend(one, "throughput"), -1);
  r.gpus = 2;  // 141 GB in bf16 fits once split in two
  const std::vector<LayoutResult> two = plan_layouts(c, hw, r);
  ASSERT_EQ(two.size(), 3u);  // tp1 pp1 dp2, tp1 pp2, tp2
  EXPECT_FALSE(two[0].fits);
  EXPECT_TRUE(two[1].fits && two[2].fits);
  EXPECT_GE(recommend(two, "throughput"), 1);
}

TEST(Layouts, TheRecommendationFollowsTheObjective) {
  const ModelConfig c = ModelConfig::from_file(kShapes + "/llama-3-8b/config.json");
  const HardwareProfile hw = HardwareProfile::load("h200", kProfiles);
  PlanRequest r;
  r.gpus = 8;
  r.intra_node_link = hw.intra_node_link;
  r.inter_node_link = hw.inter_node_link;
  const std::vector<LayoutResult> throughput = plan_layouts(c, hw, r);
  const LayoutResult& t = throughput[recommend(throughput, "throughput")];
  EXPECT_EQ(t.dp, 8);  // eight replicas of the 16 GB model beat any split for tokens/s
  r.objective = "latency";
  const std::vector<LayoutResult> latency = plan_layouts(c, hw, r);
  const LayoutResult& l = latency[recommend(latency, "latency")];
  EXPECT_EQ(l.tp, 8);  // one token soonest: each GPU reads an eighth of the weights
  EXPECT_LT(l.decode_step_s, t.decode_step_s);
  // Latency is judged at batch 1: the throughput layout at batch 1 is slower per token.
  EXPECT_LT(l.decode_step_s, latency[0].decode_step_s);
}

TEST(Layouts, JsonCarriesEveryColumn) {
  const ModelConfig c = ModelConfig::from_file(kShapes + "/llama-3-8b/config.json");
  const HardwareProfile hw = HardwareProfile::load("h200", kProfiles);
  PlanRequest r;
  r.batch = 4;
  const nlohmann::json j = nlohmann::json::parse(layout_json(plan_layouts(c, hw, r).at(0)).dump());
  EXPECT_EQ(j["tp"], 1);
  EXPECT_EQ(j["batch"], 4);
  for (const char* key : {"decode_step_ms", "prefill_ms", "ttft_ms", "tpot_ms", "output_tokens_per_s", "bottleneck"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_GT(j["memory_gib"]["weights"].get<double>(), 14.9);  // 8.03e9 parameters x 2 bytes = 14.96 GiB
  EXPECT_LT(j["memory_gib"]["weights"].get<double>(), 15.0);
}

}  // namespace
}  // namespace lattice::planner
