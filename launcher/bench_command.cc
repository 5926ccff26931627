// lattice bench: prefill and decode speed of a model on this machine, reported next to the machine's
// measured ceilings (read bandwidth for decode, sgemm rate for prefill).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "engine/scheduler/scheduler.h"
#include "kernels/cpu/gemm.h"
#include "launcher/runtime_env.h"
#include "launcher/commands.h"
#include "launcher/engine_setup.h"
#include "launcher/machine_ceilings.h"

namespace lattice::launcher {

namespace {

struct ModelCost {
  double total_params;   // every weight, the embedding included
  double matmul_params;  // weights multiplied per token (all layers + lm_head)
  double weight_bytes;   // bytes of weights read per step (in the model's dtype)
};

ModelCost model_cost(const ModelConfig& c, DType dtype) {
  const double h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const double per_layer = h * q * 2 + h * kv * 2 + 3 * h * c.intermediate_size + 2 * h;
  const double params = c.num_layers * per_layer + c.vocab_size * h;
  const double embedding = c.tie_word_embeddings ? 0 : c.vocab_size * h;
  return {params + embedding + h, params, (params + h) * static_cast<double>(dtype_size(dtype))};
}

// Attention FLOPs of `tokens` new tokens following `past` cached ones (QK^T and PV, every layer).
double attention_flops(const ModelConfig& c, double past, double tokens) {
  const double pairs = tokens * past + tokens * (tokens + 1) / 2;
  return 4.0 * pairs * c.num_heads * c.head_dim * c.num_layers;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}


}  // namespace

int bench_command(const Args& argv, parallel::MpiRuntime* mpi) {
  const CliArgs args(argv, engine_switches({"json", "help"}));
  if (args.has("help")) {
    std::puts("usage: lattice bench --model DIR [--batch B] [--input-len I] [--output-len O] [--json]\n"
              "  B requests of I random prompt tokens each generate O tokens (greedy, EOS ignored) through the\n"
              "  scheduler, as a server would run them; defaults: batch 1, input 128, output 128.\n"
              "  Also the engine flags (--device, --dtype, --dummy-weights, --kv-cache-mb, --max-seqs, ...) and --seed");
    return 0;
  }
  const int64_t batch = args.get_int("batch", 1), input_len = args.get_int("input-len", 128),
                output_len = args.get_int("output-len", 128);
  const bool json_out = args.has("json");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0));
  LATTICE_CHECK(batch > 0 && input_len > 0 && output_len > 0, "--batch, --input-len and --output-len must be > 0");
  const EngineOptions engine_flags = engine_options(args);
  args.reject_unknown();
  LATTICE_CHECK(!mpi || mpi->world_size() == 1, "lattice bench runs on one rank; use generate under mpirun");
  LoadedEngine e = load_engine(engine_flags, nullptr, json_out);
  const ModelConfig& c = e.model->config();
  LATTICE_CHECK(input_len + output_len <= c.max_position_embeddings, "input + output length ", input_len + output_len,
                " exceeds the model's ", c.max_position_embeddings, " positions");
  const bool gpu = e.device != nullptr;
  const DType dtype = e.model->activation_dtype();

  // The ceilings the results are read against, measured in this run on the device that ran the model.
  const double bandwidth = gpu ? measure_device_read_bandwidth_gbs(*e.device) : measure_read_bandwidth_gbs();
  const double sgemm = gpu ? 0 : measure_sgemm_gflops(1024, 1024, 1024);

  SchedulerOptions options;
  options.max_tokens_per_step = engine_flags.limits.max_tokens_per_step;
  options.max_seqs = engine_flags.limits.max_seqs;
  options.prefix_caching = prefix_caching(engine_flags, e);
  Scheduler scheduler(e.model->lm_shape(), e.cache->num_blocks(), static_cast<int32_t>(e.cache->shape().block_size),
                      options);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (int64_t s = 0; s < batch; ++s) {
    Request r;
    r.id = s;
    for (int64_t i = 0; i < input_len; ++i) r.prompt.push_back(static_cast<int32_t>(rng() % c.vocab_size));
    r.params.temperature = 0;
    r.params.ignore_eos = true;
    r.params.max_tokens = static_cast<int32_t>(output_len);
    scheduler.add(std::move(r));
  }
  LocalExecutor executor(*e.runner);
  // Prefill ends when the last request has its first token; decode is everything after.
  std::vector<char> has_first(static_cast<size_t>(batch), 0);
  int64_t firsts = 0;
  const auto start = std::chrono::steady_clock::now();
  double prefill_s = 0;
  int64_t prefill_steps = 0;
  const std::vector<RequestOutput> outputs = scheduler.run(executor, [&](const TokenEvent& ev) {
    if (!ev.token || has_first[static_cast<size_t>(ev.request_id)]) return;
    has_first[static_cast<size_t>(ev.request_id)] = 1;
    if (++firsts < batch) return;
    prefill_s = seconds_since(start);
    prefill_steps = scheduler.stats().steps;
  });
  const double total_s = seconds_since(start);
  // A failed request (logits that cannot be sampled: a broken checkpoint) leaves nothing to measure.
  for (const RequestOutput& out : outputs)
    LATTICE_CHECK(out.finish != FinishReason::error, "bench request ", out.id, " of ", batch, " failed: ", out.error);
  const double decode_s = total_s - prefill_s;
  const SchedulerStats& stats = scheduler.stats();

  const ModelCost cost = model_cost(c, dtype);
  const double prefill_tokens = static_cast<double>(batch * input_len);
  const double prefill_gflops = (2 * cost.matmul_params * prefill_tokens +
                                 batch * attention_flops(c, 0, static_cast<double>(input_len))) / prefill_s / 1e9;
  // Decode reads every weight once per step plus each sequence's K/V so far.
  const double decode_steps = static_cast<double>(stats.steps - prefill_steps);
  const double kv_bytes_per_token = static_cast<double>(e.cache->shape().bytes_per_block(dtype)) /
                                    static_cast<double>(e.cache->shape().block_size);
  const double decode_tokens = static_cast<double>(batch * (output_len - 1));
  const double kv_bytes = decode_tokens * (input_len + output_len / 2.0) * kv_bytes_per_token;
  const double decode_gbs = (cost.weight_bytes * decode_steps + kv_bytes) / decode_s / 1e9;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_mib = usage.ru_maxrss / 1024.0;

  nlohmann::ordered_json j = {
      {"model", engine_flags.model_dir},
      {"device", gpu ? e.device_name() : "cpu"},
      {"dtype", dtype_name(dtype)},
      {"params_millions", cost.total_params / 1e6},
      {"matmul_params_millions", cost.matmul_params / 1e6},
      {"weight_gb", cost.weight_bytes / 1e9},
      {"threads", omp_get_max_threads()},
      {"batch", batch},
      {"input_len", input_len},
      {"output_len", output_len},
      {"steps", stats.steps},
      {"prefill_tokens_per_s", prefill_tokens / prefill_s},
      {"prefill_gflops", prefill_gflops},
      {"decode_tokens_per_s", decode_tokens / decode_s},
      {"output_tokens_per_s", static_cast<double>(batch * output_len) / total_s},
      {"decode_gb_per_s", decode_gbs},
      {"read_bandwidth_gb_per_s", bandwidth},
      {"decode_vs_bandwidth", decode_gbs / bandwidth},
      {"peak_host_memory_mib", peak_mib},
  };
  if (!gpu) {
    j["blas_core"] = blas_selection_note(kernels::cpu::blas_core_name());
    j["sgemm_gflops"] = sgemm;
    j["prefill_vs_sgemm"] = prefill_gflops / sgemm;
  }
  if (json_out) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model %s: %.1fM params (%.1fM in matmuls, %.2f GB of %s weights) on %s\n", engine_flags.model_dir.c_str(),
              cost.total_params / 1e6, cost.matmul_params / 1e6, cost.weight_bytes / 1e9, dtype_name(dtype),
              j["device"].get<std::string>().c_str());
  std::printf("%-28s %12s\n", "metric", "value");
  std::printf("%-28s %12.1f\n", "prefill tokens/s", prefill_tokens / prefill_s);
  std::printf("%-28s %12.1f\n", "prefill GFLOP/s", prefill_gflops);
  if (!gpu) {
    std::printf("%-28s %12.1f\n", "sgemm GFLOP/s (1024^3)", sgemm);
    std::printf("%-28s %11.0f%%\n", "prefill / sgemm", 100 * prefill_gflops / sgemm);
  }
  std::printf("%-28s %12.2f\n", "decode tokens/s", decode_tokens / decode_s);
  std::printf("%-28s %12.2f\n", "output tokens/s (all)", static_cast<double>(batch * output_len) / total_s);
  std::printf("%-28s %12.2f\n", "decode GB/s", decode_gbs);
  std::printf("%-28s %12.2f\n", gpu ? "device read GB/s" : "read bandwidth GB/s", bandwidth);
  std::printf("%-28s %11.0f%%\n", "decode / bandwidth", 100 * decode_gbs / bandwidth);
  std::printf("%-28s %12.1f\n", "peak host memory MiB", peak_mib);
  return 0;
}

}  // namespace lattice::launcher
