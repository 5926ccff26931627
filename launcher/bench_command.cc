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

// One measured run: `batch` requests of input_len random tokens generating output_len tokens each.
struct RunSpec {
  int64_t batch, input_len, output_len;
  uint64_t seed;
};

// The machine's ceilings, measured once per invocation on the device that runs the model.
struct Ceilings {
  double read_gbs = 0;      // memory read bandwidth (device HBM on a GPU)
  double gemm_gflops = 0;   // f32 sgemm (CPU) or bf16 GemmLt (GPU), in GFLOP/s
};

double communication_seconds(const LoadedEngine& e) {
  return (e.ctx.tp ? e.ctx.tp->seconds() : 0) + (e.ctx.prev ? e.ctx.prev->seconds() : 0) +
         (e.ctx.next ? e.ctx.next->seconds() : 0);
}

nlohmann::ordered_json bench_run(LoadedEngine& e, const EngineOptions& engine_flags, const RunSpec& run,
                                 const Ceilings& ceil) {
  const ModelConfig& c = e.model->config();
  const bool gpu = e.device != nullptr;
  const DType dtype = e.model->activation_dtype();
  const int64_t batch = run.batch, input_len = run.input_len, output_len = run.output_len;
  SchedulerOptions options;
  options.max_tokens_per_step = engine_flags.limits.max_tokens_per_step;
  options.max_seqs = engine_flags.limits.max_seqs;
  options.prefix_caching = prefix_caching(engine_flags, e);
  options.async_scheduling = engine_flags.async_scheduling;
  Scheduler scheduler(e.model->lm_shape(), e.cache->num_blocks(), static_cast<int32_t>(e.cache->shape().block_size),
                      options);
  std::mt19937 rng(static_cast<uint32_t>(run.seed + static_cast<uint64_t>(batch)));
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
  const int64_t graph_steps0 = e.runner->graph_steps(), eager_steps0 = e.runner->eager_steps();
  const double build0 = e.runner->host_build_seconds(), enqueue0 = e.runner->host_enqueue_seconds();
  const double comm0 = communication_seconds(e);
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
      {"cuda_graphs", e.runner->has_decode_graphs()},
      {"cuda_graphs_off_reason", e.graphs_off},
      {"async_scheduling", engine_flags.async_scheduling},
      {"cuda_graph_count", e.graphs.graphs},
      {"cuda_graph_capture_s", e.graphs.seconds},
      {"cuda_graph_mib", static_cast<double>(e.graphs.device_bytes) / 1048576.0},
      {"graph_steps", e.runner->graph_steps() - graph_steps0},
      {"eager_steps", e.runner->eager_steps() - eager_steps0},
      {"prefill_tokens_per_s", prefill_tokens / prefill_s},
      {"prefill_gflops", prefill_gflops},
      {"decode_tokens_per_s", decode_tokens / decode_s},
      {"decode_ms_per_step", decode_steps > 0 ? 1e3 * decode_s / decode_steps : 0.0},
      {"output_tokens_per_s", static_cast<double>(batch * output_len) / total_s},
      {"decode_gb_per_s", decode_gbs},
      {"read_bandwidth_gb_per_s", ceil.read_gbs},
      {"decode_vs_bandwidth", decode_gbs / ceil.read_gbs},
      // Host wall time inside the communicators' calls per step (0 on one rank; on a GPU with NCCL it is the
      // time to enqueue and the per-step wait, not the collectives' device time).
      {"communication_ms_per_step", 1e3 * (communication_seconds(e) - comm0) / static_cast<double>(stats.steps)},
      // Host time per step (every step, prefill included) building and uploading the metadata, and enqueueing the
      // step (on the CPU: computing it); the rest of ms per step is the device, the sampler's wait and the scheduler.
      {"host_build_ms_per_step", 1e3 * (e.runner->host_build_seconds() - build0) / static_cast<double>(stats.steps)},
      {"host_enqueue_ms_per_step",
       1e3 * (e.runner->host_enqueue_seconds() - enqueue0) / static_cast<double>(stats.steps)},
      {"peak_host_memory_mib", usage.ru_maxrss / 1024.0},
  };
  if (gpu) {
    j["gemm_peak_tflops"] = ceil.gemm_gflops / 1e3;
    j["prefill_vs_gemm_peak"] = prefill_gflops / ceil.gemm_gflops;
  } else {
    j["blas_core"] = blas_selection_note(kernels::cpu::blas_core_name());
    j["sgemm_gflops"] = ceil.gemm_gflops;
    j["prefill_vs_sgemm"] = prefill_gflops / ceil.gemm_gflops;
  }
  return j;
}

void print_table(const std::vector<nlohmann::ordered_json>& runs, bool gpu) {
  const nlohmann::ordered_json& f = runs.front();
  std::printf("model %s: %.1fM params (%.1fM in matmuls, %.2f GB of %s weights) on %s, CUDA graphs %s, "
              "async scheduling %s\n",
              f["model"].get<std::string>().c_str(), f["params_millions"].get<double>(),
              f["matmul_params_millions"].get<double>(), f["weight_gb"].get<double>(),
              f["dtype"].get<std::string>().c_str(), f["device"].get<std::string>().c_str(),
              f["cuda_graphs"].get<bool>() ? "on" : "off", f["async_scheduling"].get<bool>() ? "on" : "off");
  std::printf("ceilings measured in this run: %s %.1f GB/s, %s %.1f %s\n", gpu ? "device read" : "memory read",
              f["read_bandwidth_gb_per_s"].get<double>(), gpu ? "bf16 GEMM" : "sgemm (1024^3)",
              gpu ? f["gemm_peak_tflops"].get<double>() : f["sgemm_gflops"].get<double>(), gpu ? "TFLOP/s" : "GFLOP/s");
  std::printf("%6s %6s %6s %12s %12s %9s %11s %7s %12s %7s %9s\n", "batch", "in", "out", "output tok/s", "decode tok/s",
              "ms/step", "decode GB/s", "% read", "prefill GF/s", "% gemm", "comm ms");
  for (const auto& r : runs) {
    const double prefill_ratio = gpu ? r["prefill_vs_gemm_peak"].get<double>() : r["prefill_vs_sgemm"].get<double>();
    std::printf("%6lld %6lld %6lld %12.1f %12.2f %9.3f %11.1f %6.0f%% %12.1f %6.0f%% %9.3f\n",
                static_cast<long long>(r["batch"].get<int64_t>()), static_cast<long long>(r["input_len"].get<int64_t>()),
                static_cast<long long>(r["output_len"].get<int64_t>()), r["output_tokens_per_s"].get<double>(),
                r["decode_tokens_per_s"].get<double>(), r["decode_ms_per_step"].get<double>(),
                r["decode_gb_per_s"].get<double>(), 100 * r["decode_vs_bandwidth"].get<double>(),
                r["prefill_gflops"].get<double>(), 100 * prefill_ratio, r["communication_ms_per_step"].get<double>());
  }
  std::printf("peak host memory %.1f MiB\n", runs.back()["peak_host_memory_mib"].get<double>());
}

}  // namespace

int bench_command(const Args& argv, parallel::MpiRuntime* mpi) {
  const CliArgs args(argv, engine_switches({"json", "help"}));
  if (args.has("help")) {
    std::puts("usage: lattice bench --model DIR [--batch B | --batch-sizes 1,8,64] [--input-len I] [--output-len O]\n"
              "                     [--json]\n"
              "  B requests of I random prompt tokens each generate O tokens (greedy, EOS ignored) through the\n"
              "  scheduler, as a server would run them; defaults: batch 1, input 128, output 128. --batch-sizes runs\n"
              "  one such run per size on the same loaded engine (the JSON then has a \"runs\" list;\n"
              "  scripts/plot_bench.py draws throughput against batch size). Each run reports tok/s, ms per decode\n"
              "  step, the bytes a decode step reads (weights + K/V) against the read bandwidth measured in the same\n"
              "  invocation, prefill FLOP/s against the measured GEMM peak, and time in communication per step.\n"
              "  Also the engine flags (--device, --dtype, --dummy-weights, --kv-cache-mb, --max-seqs,\n"
              "  --no-cuda-graphs, --async-scheduling, ...) and --seed");
    return 0;
  }
  const bool sweep = args.has("batch-sizes");
  LATTICE_CHECK(!(sweep && args.has("batch")), "give --batch or --batch-sizes, not both");
  std::vector<int64_t> batches;
  if (sweep)
    for (const int32_t b : parse_int_list(args.require("batch-sizes"), "--batch-sizes")) batches.push_back(b);
  else
    batches.push_back(args.get_int("batch", 1));
  const int64_t input_len = args.get_int("input-len", 128), output_len = args.get_int("output-len", 128);
  const bool json_out = args.has("json");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0));
  LATTICE_CHECK(!batches.empty(), "--batch-sizes needs at least one size");
  for (const int64_t b : batches) LATTICE_CHECK(b > 0, "batch sizes must be > 0, got ", b);
  LATTICE_CHECK(input_len > 0 && output_len > 0, "--input-len and --output-len must be > 0");
  const EngineOptions engine_flags = engine_options(args);
  args.reject_unknown();
  LATTICE_CHECK(!mpi || mpi->world_size() == 1, "lattice bench runs on one rank; use generate under mpirun");
  LoadedEngine e = load_engine(engine_flags, nullptr, json_out);
  const ModelConfig& c = e.model->config();
  LATTICE_CHECK(input_len + output_len <= c.max_position_embeddings, "input + output length ", input_len + output_len,
                " exceeds the model's ", c.max_position_embeddings, " positions");
  const bool gpu = e.device != nullptr;

  // The ceilings the results are read against, measured in this run on the device that ran the model.
  Ceilings ceil;
  ceil.read_gbs = gpu ? measure_device_read_bandwidth_gbs(*e.device) : measure_read_bandwidth_gbs();
  ceil.gemm_gflops = gpu ? 1e3 * measure_device_gemm_tflops(*e.device, 8192) : measure_sgemm_gflops(1024, 1024, 1024);

  std::vector<nlohmann::ordered_json> runs;
  for (const int64_t b : batches) {
    runs.push_back(bench_run(e, engine_flags, {b, input_len, output_len, seed}, ceil));
    if (!json_out && sweep) std::fprintf(stderr, "bench: batch %lld done\n", static_cast<long long>(b));
  }
  if (json_out) {
    if (sweep)
      std::printf("%s\n", nlohmann::ordered_json{{"runs", runs}}.dump().c_str());
    else
      std::printf("%s\n", runs.front().dump().c_str());
    return 0;
  }
  print_table(runs, gpu);
  return 0;
}

}  // namespace lattice::launcher
