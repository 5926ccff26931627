// lattice bench: prefill and decode speed of a model on this machine, reported next to the machine's
// measured ceilings (read bandwidth for decode, sgemm rate for prefill). Under mpirun with --tp/--pp, rank 0 runs
// the benchmark through the distributed engine as generate and serve do, the other ranks follow its plans, and
// the report adds every rank's time in communication (launcher/bench_communication.h).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "engine/ops/op_profile.h"
#include "engine/scheduler/scheduler.h"
#include "kernels/cpu/gemm.h"
#include "launcher/bench_communication.h"
#include "launcher/runtime_env.h"
#include "launcher/commands.h"
#include "launcher/engine_setup.h"
#include "launcher/machine_ceilings.h"
#include "parallel/pipeline_executor.h"

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

// The machine's ceilings, measured before and after the runs on the device that runs the model.
struct Ceilings {
  double read_gbs = 0;      // memory read bandwidth (device HBM on a GPU)
  double gemm_gflops = 0;   // f32 sgemm (CPU) or bf16 GemmLt (GPU), in GFLOP/s
};

// On rank 0; `stage` is null on one rank, else the steps go through the pipeline executor as in generate.
nlohmann::ordered_json bench_run(LoadedEngine& e, parallel::StageRunner* stage, const EngineOptions& engine_flags,
                                 const RunSpec& run) {
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
  std::unique_ptr<parallel::PipelineExecutor> pipeline;
  std::unique_ptr<LocalExecutor> local;
  if (stage)
    pipeline = std::make_unique<parallel::PipelineExecutor>(*stage);
  else
    local = std::make_unique<LocalExecutor>(*e.runner);
  StepExecutor& executor = pipeline ? static_cast<StepExecutor&>(*pipeline) : *local;
  const int64_t graph_steps0 = e.runner->graph_steps(), eager_steps0 = e.runner->eager_steps();
  const double build0 = e.runner->host_build_seconds(), enqueue0 = e.runner->host_enqueue_seconds();
  const parallel::RankCommunication comm0 = begin_bench_run(e);
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
  if (pipeline) pipeline->shutdown();  // the workers' run ends; they report their communication
  const nlohmann::ordered_json comm =
      communication_json(parallel::gather_communication(e.ctx, bench_counters(e) - comm0), scheduler.stats().steps);
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
      {"tp", e.ctx.topo.tp},
      {"pp", e.ctx.topo.pp},
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
      // Left out of the KV cache for the graphs before sizing it (a profile capture's measure, with a margin).
      {"cuda_graph_reserved_mib", static_cast<double>(e.graph_reserve_bytes) / 1048576.0},
      {"device_memory_total_mib", static_cast<double>(e.device_total_bytes) / 1048576.0},
      {"device_memory_free_mib", static_cast<double>(e.device_free_bytes) / 1048576.0},  // once set up
      {"graph_steps", e.runner->graph_steps() - graph_steps0},
      {"eager_steps", e.runner->eager_steps() - eager_steps0},
      {"prefill_tokens_per_s", prefill_tokens / prefill_s},
      {"prefill_gflops", prefill_gflops},
      {"decode_tokens_per_s", decode_tokens / decode_s},
      {"decode_ms_per_step", decode_steps > 0 ? 1e3 * decode_s / decode_steps : 0.0},
      {"output_tokens_per_s", static_cast<double>(batch * output_len) / total_s},
      {"decode_gb_per_s", decode_gbs},
      // Time in communication per step, the largest over ranks and the mean (0 on one rank): wall time inside
      // MPI calls, NCCL's device time from CUDA events; steps replayed from CUDA graphs are not timed.
      {"communication_ms_per_step", comm["communication_ms_per_step"]},
      {"communication_ms_per_step_mean", comm["communication_ms_per_step_mean"]},
      {"communication_per_rank", comm["communication_per_rank"]},
      // Host time per step (every step, prefill included) building and uploading the metadata, and enqueueing the
      // step (on the CPU: computing it); the rest of ms per step is the device, the sampler's wait and the scheduler.
      {"host_build_ms_per_step", 1e3 * (e.runner->host_build_seconds() - build0) / static_cast<double>(stats.steps)},
      {"host_enqueue_ms_per_step",
       1e3 * (e.runner->host_enqueue_seconds() - enqueue0) / static_cast<double>(stats.steps)},
      {"peak_host_memory_mib", usage.ru_maxrss / 1024.0},
  };
  if (!gpu) j["blas_core"] = blas_selection_note(kernels::cpu::blas_core_name());
  return j;
}

// The ceilings the results are read against, measured on the device that ran the model.
Ceilings measure_ceilings(LoadedEngine& e) {
  if (e.device) return {measure_device_read_bandwidth_gbs(*e.device), 1e3 * measure_device_gemm_tflops(*e.device, 8192)};
  return {measure_read_bandwidth_gbs(), measure_sgemm_gflops(1024, 1024, 1024)};
}

// A run's figures against the ceilings (the better of the measures taken before and after the runs: one taken
// while the machine was briefly busy would otherwise put a run above 100%).
void apply_ceilings(nlohmann::ordered_json& j, const Ceilings& ceil, bool gpu) {
  j["read_bandwidth_gb_per_s"] = ceil.read_gbs;
  j["decode_vs_bandwidth"] = j["decode_gb_per_s"].get<double>() / ceil.read_gbs;
  const double prefill_gflops = j["prefill_gflops"].get<double>();
  if (gpu) {
    j["gemm_peak_tflops"] = ceil.gemm_gflops / 1e3;
    j["prefill_vs_gemm_peak"] = prefill_gflops / ceil.gemm_gflops;
  } else {
    j["sgemm_gflops"] = ceil.gemm_gflops;
    j["prefill_vs_sgemm"] = prefill_gflops / ceil.gemm_gflops;
  }
}

void print_table(const std::vector<nlohmann::ordered_json>& runs, bool gpu) {
  const nlohmann::ordered_json& f = runs.front();
  std::printf("model %s: %.1fM params (%.1fM in matmuls, %.2f GB of %s weights) on %s, CUDA graphs %s, "
              "async scheduling %s\n",
              f["model"].get<std::string>().c_str(), f["params_millions"].get<double>(),
              f["matmul_params_millions"].get<double>(), f["weight_gb"].get<double>(),
              f["dtype"].get<std::string>().c_str(), f["device"].get<std::string>().c_str(),
              f["cuda_graphs"].get<bool>() ? "on" : "off", f["async_scheduling"].get<bool>() ? "on" : "off");
  std::printf("ceilings measured in this run (the better of before and after the runs): %s %.1f GB/s, %s %.1f %s\n",
              gpu ? "device read" : "memory read",
              f["read_bandwidth_gb_per_s"].get<double>(), gpu ? "bf16 GEMM" : "sgemm (1024^3)",
              gpu ? f["gemm_peak_tflops"].get<double>() : f["sgemm_gflops"].get<double>(), gpu ? "TFLOP/s" : "GFLOP/s");
  std::printf("%6s %6s %6s %12s %12s %9s %11s %7s %12s %7s %9s %9s\n", "batch", "in", "out", "output tok/s",
              "decode tok/s", "ms/step", "decode GB/s", "% read", "prefill GF/s", "% gemm", "comm max", "comm mean");
  for (const auto& r : runs) {
    const double prefill_ratio = gpu ? r["prefill_vs_gemm_peak"].get<double>() : r["prefill_vs_sgemm"].get<double>();
    std::printf("%6lld %6lld %6lld %12.1f %12.2f %9.3f %11.1f %6.0f%% %12.1f %6.0f%% %9.3f %9.3f\n",
                static_cast<long long>(r["batch"].get<int64_t>()), static_cast<long long>(r["input_len"].get<int64_t>()),
                static_cast<long long>(r["output_len"].get<int64_t>()), r["output_tokens_per_s"].get<double>(),
                r["decode_tokens_per_s"].get<double>(), r["decode_ms_per_step"].get<double>(),
                r["decode_gb_per_s"].get<double>(), 100 * r["decode_vs_bandwidth"].get<double>(),
                r["prefill_gflops"].get<double>(), 100 * prefill_ratio, r["communication_ms_per_step"].get<double>(),
                r["communication_ms_per_step_mean"].get<double>());
  }
  if (f["tp"].get<int>() * f["pp"].get<int>() > 1) print_communication(runs);
  std::printf("peak host memory %.1f MiB\n", runs.back()["peak_host_memory_mib"].get<double>());
}

// The median over `its` of every floating-point figure of `m` (a copy of its.front()), at any depth: objects key by
// key, arrays element by element (every iteration's report has the same shape: communication_per_rank too).
void take_medians(nlohmann::ordered_json& m, const std::vector<const nlohmann::ordered_json*>& its) {
  if (m.is_number_float()) {
    std::vector<double> v;
    for (const nlohmann::ordered_json* it : its) v.push_back(it->get<double>());
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return;
  }
  if (m.is_object()) {
    for (auto& [key, value] : m.items()) {
      std::vector<const nlohmann::ordered_json*> parts;
      for (const nlohmann::ordered_json* it : its) parts.push_back(&it->at(key));
      take_medians(value, parts);
    }
    return;
  }
  for (size_t i = 0; m.is_array() && i < m.size(); ++i) {
    std::vector<const nlohmann::ordered_json*> parts;
    for (const nlohmann::ordered_json* it : its) parts.push_back(&it->at(i));
    take_medians(m[i], parts);
  }
}

// The median of each measured (floating-point) figure over the iterations of one spec; counts, names and flags
// are the same in every iteration and come from the first. "iterations" lists the headline rates of each.
nlohmann::ordered_json median_of(const std::vector<nlohmann::ordered_json>& its) {
  nlohmann::ordered_json m = its.front();
  std::vector<const nlohmann::ordered_json*> all;
  for (const auto& it : its) all.push_back(&it);
  take_medians(m, all);
  m["iterations"] = nlohmann::ordered_json::array();
  for (const auto& it : its)
    m["iterations"].push_back({{"prefill_tokens_per_s", it["prefill_tokens_per_s"]},
                               {"decode_tokens_per_s", it["decode_tokens_per_s"]},
                               {"output_tokens_per_s", it["output_tokens_per_s"]}});
  return m;
}

// One phase's profile summed over the measured iterations: per op kind ms per step, share of the phase's wall
// time, GFLOP/s where the FLOPs are counted; "host" is the rest of the wall time.
nlohmann::ordered_json profile_json(const ops::PhaseProfile& p) {
  const double steps = static_cast<double>(std::max<int64_t>(p.steps, 1));
  nlohmann::ordered_json ops_json = nlohmann::ordered_json::object();
  for (int k = 0; k < ops::kOpKinds; ++k) {
    if (p.seconds[k] == 0 && p.flops[k] == 0) continue;  // an op kind this model never runs
    nlohmann::ordered_json op = {{"ms_per_step", 1e3 * p.seconds[k] / steps}, {"share", p.seconds[k] / p.wall_s}};
    if (p.flops[k] > 0) {
      op["gflop_per_step"] = p.flops[k] / steps / 1e9;
      op["gflops"] = p.seconds[k] > 0 ? p.flops[k] / p.seconds[k] / 1e9 : 0.0;
    }
    ops_json[ops::op_kind_name(static_cast<ops::OpKind>(k))] = op;
  }
  const double host = std::max(0.0, p.wall_s - p.op_seconds());
  return {{"steps", p.steps},
          {"wall_ms_per_step", 1e3 * p.wall_s / steps},
          {"ops", ops_json},
          {"host", {{"ms_per_step", 1e3 * host / steps}, {"share", p.wall_s > 0 ? host / p.wall_s : 0.0}}}};
}

void print_profile(const nlohmann::ordered_json& profile, bool gpu) {
  std::printf("\nprofile (%s; sum over the measured iterations):\n",
              gpu ? "CUDA events around each op's kernels, graphs off" : "wall time around each op");
  for (const char* phase : {"prefill", "decode"}) {
    const auto& p = profile[phase];
    if (p["steps"].get<int64_t>() == 0) continue;
    std::printf("%s: %lld steps, %.3f ms per step\n", phase, static_cast<long long>(p["steps"].get<int64_t>()),
                p["wall_ms_per_step"].get<double>());
    std::printf("  %-14s %10s %7s %10s\n", "op", "ms/step", "share", "GFLOP/s");
    auto row = [](const std::string& name, const nlohmann::ordered_json& op) {
      std::printf("  %-14s %10.3f %6.1f%%", name.c_str(), op["ms_per_step"].get<double>(),
                  100 * op["share"].get<double>());
      if (op.contains("gflops"))
        std::printf(" %10.1f\n", op["gflops"].get<double>());
      else
        std::printf(" %10s\n", "-");
    };
    for (const auto& [name, op] : p["ops"].items()) row(name, op);
    row("host", p["host"]);
  }
}

}  // namespace

int bench_command(const Args& argv, parallel::MpiRuntime* mpi) {
  const CliArgs args(argv, engine_switches({"json", "profile", "help"}));
  if (args.has("help")) {
    std::puts("usage: lattice bench --model DIR [--batch B | --batch-sizes 1,8,64] [--input-len I] [--output-len O]\n"
              "                     [--num-iters N] [--num-iters-warmup W] [--profile] [--json]\n"
              "  B requests of I random prompt tokens each generate O tokens (greedy, EOS ignored) through the\n"
              "  scheduler, as a server would run them; defaults: batch 1, input 128, output 128. --batch-sizes runs\n"
              "  one such run per size on the same loaded engine (the JSON then has a \"runs\" list;\n"
              "  scripts/plot_bench.py draws throughput against batch size). Each run reports tok/s, ms per decode\n"
              "  step, the bytes a decode step reads (weights + K/V) against the read bandwidth measured in the same\n"
              "  invocation, prefill FLOP/s against the measured GEMM peak, and time in communication per step.\n"
              "  Each size runs W unmeasured warm-up iterations (default 1), then N measured ones (default 3);\n"
              "  every figure is the median over the N (the JSON lists each iteration's rates). --profile adds the\n"
              "  time per op kind (GEMMs by projection, attention, norms, RoPE + KV write, sampling, ...) per step\n"
              "  of each phase, and the host's remainder: wall time on the CPU, CUDA events on a GPU (where it\n"
              "  turns CUDA graphs off; not with --async-scheduling).\n"
              "  Under mpirun with --tp N --pp M (N x M ranks) rank 0 runs the benchmark through the distributed\n"
              "  engine and reports each rank's time in communication per step, with its maximum and mean.\n"
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
  const bool json_out = args.has("json"), profile = args.has("profile");
  const int64_t iters = args.get_int("num-iters", 3), warmup = args.get_int("num-iters-warmup", 1);
  LATTICE_CHECK(iters >= 1 && warmup >= 0, "--num-iters must be >= 1 and --num-iters-warmup >= 0, got ", iters, " and ",
                warmup);
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0));
  LATTICE_CHECK(!batches.empty(), "--batch-sizes needs at least one size");
  for (const int64_t b : batches) LATTICE_CHECK(b > 0, "batch sizes must be > 0, got ", b);
  LATTICE_CHECK(input_len > 0 && output_len > 0, "--input-len and --output-len must be > 0");
  EngineOptions engine_flags = engine_options(args);
  engine_flags.cuda_graphs = engine_flags.cuda_graphs && !profile;  // a graph replays without the op timers
  LATTICE_CHECK(!profile || !engine_flags.async_scheduling, "--profile times one step at a time; drop ",
                "--async-scheduling (two steps in flight would share their ops' time)");
  args.reject_unknown();
  LATTICE_CHECK(engine_flags.dp == 1, "lattice bench measures one replica; --dp is for generate and serve");
  LATTICE_CHECK(!profile || !mpi || mpi->world_size() == 1, "--profile times the ops of one rank; under mpirun ",
                "the communication columns say what the ranks spend in collectives");
  LoadedEngine e = load_engine(engine_flags, mpi && mpi->world_size() > 1 ? mpi : nullptr, json_out);
  if (profile && e.device) e.graphs_off = "--profile (events between the ops)";
  const ModelConfig& c = e.model->config();
  LATTICE_CHECK(input_len + output_len <= c.max_position_embeddings, "input + output length ", input_len + output_len,
                " exceeds the model's ", c.max_position_embeddings, " positions");
  if (!e.ctx.topo.is_coordinator()) {  // every run rank 0 makes: warm-up and measured iterations of each size
    follow_bench_runs(e, batches.size() * static_cast<size_t>(warmup + iters));
    return 0;
  }
  const bool gpu = e.device != nullptr;

  const Ceilings before = measure_ceilings(e);

  std::unique_ptr<parallel::StageRunner> stage;
  if (e.ctx.topo.world_size > 1) stage = std::make_unique<parallel::StageRunner>(e.ctx, *e.runner);
  ops::OpProfiler profiler(gpu ? e.runner->exec().stream : nullptr);
  std::vector<nlohmann::ordered_json> runs;
  for (const int64_t b : batches) {
    const RunSpec spec{b, input_len, output_len, seed};
    for (int64_t i = 0; i < warmup; ++i) bench_run(e, stage.get(), engine_flags, spec);
    if (profile) e.runner->set_profiler(&profiler);
    std::array<ops::PhaseProfile, 2> phases{};
    std::vector<nlohmann::ordered_json> its;
    for (int64_t i = 0; i < iters; ++i) {
      profiler.start();
      its.push_back(bench_run(e, stage.get(), engine_flags, spec));
      for (const ops::StepPhase p : {ops::StepPhase::prefill, ops::StepPhase::decode})
        phases[static_cast<size_t>(p)] += profiler.phase(p);
    }
    e.runner->set_profiler(nullptr);
    runs.push_back(median_of(its));
    if (profile)
      runs.back()["profile"] = {{"prefill", profile_json(phases[0])}, {"decode", profile_json(phases[1])}};
    if (!json_out && sweep) std::fprintf(stderr, "bench: batch %lld done\n", static_cast<long long>(b));
  }
  const Ceilings after = measure_ceilings(e);
  const Ceilings ceil{std::max(before.read_gbs, after.read_gbs), std::max(before.gemm_gflops, after.gemm_gflops)};
  for (auto& r : runs) apply_ceilings(r, ceil, gpu);
  if (json_out) {
    if (sweep)
      std::printf("%s\n", nlohmann::ordered_json{{"runs", runs}}.dump().c_str());
    else
      std::printf("%s\n", runs.front().dump().c_str());
    return 0;
  }
  std::printf("each figure: the median of %lld measured iterations (after %lld warm-up)\n",
              static_cast<long long>(iters), static_cast<long long>(warmup));
  print_table(runs, gpu);
  if (profile)
    for (const auto& r : runs) {
      if (sweep) std::printf("\nbatch %lld:", static_cast<long long>(r["batch"].get<int64_t>()));
      print_profile(r["profile"], gpu);
    }
  return 0;
}

}  // namespace lattice::launcher
