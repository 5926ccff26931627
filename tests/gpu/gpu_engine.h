// Shared set-up for the engine-level GPU tests (binary cuda_engine_tests): one DeviceContext on GPU 0 for the
// whole binary, the tiny-llama fixture loaded on the GPU (f32 and bf16) and on the CPU (the oracle), and helpers
// that run one step or a whole generation on either backend. Every test derives from GpuEngineTest, whose
// SetUp skips (with the CUDA runtime's reason) when no GPU is visible, before anything touches the device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/cuda/device_context.h"
#include "engine/ops/attention.h"
#include "engine/scheduler/scheduler.h"
#include "kernels/cpu/sampling.h"
#include "models/llama.h"
#include "tests/cuda/cuda_test_utils.h"
#include "tests/models/run_step.h"

namespace lattice::testing {

class GpuEngineTest : public ::testing::Test {
 protected:
  // Sequences and context the attention scratch is sized for: every test stays within these.
  static constexpr int64_t kMaxSeqs = 256;
  static constexpr int64_t kMaxContext = 512;  // tiny-llama's max_position_embeddings

  void SetUp() override {
    LATTICE_SKIP_WITHOUT_CUDA();
    if (ctx_) return;
    ctx_ = std::make_unique<DeviceContext>(0);
    // Before any load: the models keep a copy of the ExecContext, scratch buffer included.
    const ModelConfig config = ModelConfig::from_file(model_dir("f32") + "/config.json");
    ctx_->reserve_scratch(ops::attention_scratch_bytes(kMaxSeqs, config.num_heads, config.head_dim, kMaxContext));
    cpu_ = LlamaModel::load(model_dir("f32"));
    gpu_f32_ = LlamaModel::load(model_dir("f32"), {}, nullptr, LoadOptions{DType::f32, ctx_->exec(), false});
    gpu_bf16_ = LlamaModel::load(model_dir("bf16"), {}, nullptr, LoadOptions{DType::bf16, ctx_->exec(), false});
  }

  // Device memory goes back while the CUDA runtime is still up (not in static destructors at exit).
  static void TearDownTestSuite() {
    gpu_bf16_.reset();
    gpu_f32_.reset();
    cpu_.reset();
    ctx_.reset();
  }

  // Helpers, also for the tests' free functions.
 public:
  static std::string model_dir(const std::string& weights) { return data_dir() + "/tiny-llama/" + weights; }

  static LlamaModel& gpu_model(DType dtype) { return dtype == DType::f32 ? *gpu_f32_ : *gpu_bf16_; }

  // The execution context of `model`'s device (the CPU or this binary's GPU).
  static ops::ExecContext exec_of(const LlamaModel& model) {
    return model.device().is_cpu() ? ops::ExecContext::cpu() : ctx_->exec();
  }

  // A KV cache of `blocks` blocks on `model`'s device, in its activation dtype.
  static KvCache cache_for(const LlamaModel& model, int32_t blocks) {
    return KvCache(model.lm_shape().kv, blocks, model.activation_dtype(), model.device());
  }

  // One step of `batch` on `model`; every logit row it returns (f32 [rows * vocab]) copied to the host.
  static std::vector<float> step_logits(LlamaModel& model, KvCache& cache, const StepBatch& batch) {
    const StepOutput out = forward(model, cache, batch, exec_of(model));
    if (!model.device().is_cpu()) ctx_->synchronize();  // the copy below does not wait on the compute stream
    return to_vector<float>(out.logits);
  }

  // One greedy request per case of the tiny-llama fixture (id = case index), as long as the case's greedy
  // continuation, ignoring EOS, with `logprobs` top log-probabilities.
  static std::vector<Request> fixture_greedy_requests(int32_t logprobs) {
    const nlohmann::json& cases = tiny_llama_expected()["cases"];
    std::vector<Request> requests;
    for (size_t c = 0; c < cases.size(); ++c) {
      Request r;
      r.id = static_cast<int64_t>(c);
      r.prompt = cases[c]["prompt"].get<std::vector<int32_t>>();
      r.params.temperature = 0;
      r.params.max_tokens = static_cast<int32_t>(cases[c]["greedy"].size());
      r.params.ignore_eos = true;
      r.params.logprobs = logprobs;
      requests.push_back(r);
    }
    return requests;
  }

  // Runs `requests` to completion through the Scheduler and a LocalExecutor (which samples on the model's
  // device) over a cache of `blocks` blocks; `stats` receives the scheduler's counters. With async scheduling,
  // `device_fed_steps` receives LocalExecutor::device_fed_steps().
  static std::vector<RequestOutput> generate(LlamaModel& model, const std::vector<Request>& requests, int32_t blocks,
                                             SchedulerStats* stats = nullptr, bool async_scheduling = false,
                                             int64_t* device_fed_steps = nullptr) {
    KvCache cache = cache_for(model, blocks);
    SchedulerOptions options;  // as the launcher sets it: the GPU sampler's top_k limit
    options.max_top_k = model.device().is_cpu() ? 0 : kernels::cpu::kMaxTopK;
    options.async_scheduling = async_scheduling;
    Scheduler scheduler(model.lm_shape(), blocks, static_cast<int32_t>(cache.shape().block_size), options);
    for (const Request& r : requests) scheduler.add(r);
    LocalExecutor executor(model, cache, exec_of(model), RunnerLimits{512, kMaxSeqs});
    std::vector<RequestOutput> out = scheduler.run(executor);
    if (stats) *stats = scheduler.stats();
    if (device_fed_steps) *device_fed_steps = executor.device_fed_steps();
    EXPECT_EQ(scheduler.blocks().num_free(), blocks) << "every block returns when requests finish";
    return out;
  }

 protected:
  static std::unique_ptr<DeviceContext> ctx_;
  static std::unique_ptr<LlamaModel> cpu_, gpu_f32_, gpu_bf16_;
};

inline std::unique_ptr<DeviceContext> GpuEngineTest::ctx_;
inline std::unique_ptr<LlamaModel> GpuEngineTest::cpu_, GpuEngineTest::gpu_f32_, GpuEngineTest::gpu_bf16_;

}  // namespace lattice::testing
