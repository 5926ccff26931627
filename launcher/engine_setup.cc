#include "launcher/engine_setup.h"

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "kernels/cpu/sampling.h"
#include "parallel/sharding.h"

#ifdef LATTICE_HAVE_CUDA
#include "engine/cuda/device_context.h"
#include "kernels/cuda/device_info.h"
#endif

namespace lattice::launcher {

EngineOptions engine_options(const CliArgs& args) {
  EngineOptions o;
  o.model_dir = args.require("model");
  o.device = args.get("device", o.device);
  o.dtype = args.get("dtype", o.dtype);
  o.gpu_memory_utilization = args.get_double("gpu-memory-utilization", o.gpu_memory_utilization);
  o.kv_cache_mb = args.get_int("kv-cache-mb", 0);
  o.kv_cache_blocks = args.get_int("kv-cache-blocks", 0);
  o.block_size = args.get_int("block-size", o.block_size);
  o.limits.max_tokens_per_step = args.get_int("max-tokens-per-step", o.limits.max_tokens_per_step);
  o.limits.max_seqs = args.get_int("max-seqs", o.limits.max_seqs);
  o.dummy_weights = args.has("dummy-weights");
  LATTICE_CHECK(!(args.has("enable-prefix-caching") && args.has("no-enable-prefix-caching")),
                "give at most one of --enable-prefix-caching and --no-enable-prefix-caching");
  o.prefix_caching = !args.has("no-enable-prefix-caching");
  o.cuda_graphs = !args.has("no-cuda-graphs") && !args.has("enforce-eager");
  LATTICE_CHECK(!(args.has("async-scheduling") && args.has("no-async-scheduling")),
                "give at most one of --async-scheduling and --no-async-scheduling");
  o.async_scheduling = args.has("async-scheduling");
  o.tp = static_cast<int>(args.get_int("tp", 1));
  o.pp = static_cast<int>(args.get_int("pp", 1));
  o.dp = static_cast<int>(args.get_int("dp", 1));
  o.grid_given = args.has("tp") || args.has("pp") || args.has("dp");
  o.expert_parallel = args.has("enable-expert-parallel") || args.has("ep");
  if (auto layers = args.maybe("pp-layers"))
    for (int32_t n : parse_int_list(*layers, "--pp-layers")) o.pp_layers.push_back(n);
  LATTICE_CHECK(o.device == "auto" || o.device == "cuda" || o.device == "cpu", "--device must be cuda or cpu, got '",
                o.device, "'");
  LATTICE_CHECK(o.dtype == "auto" || o.dtype == "bf16" || o.dtype == "f16" || o.dtype == "f32",
                "--dtype must be auto, bf16, f16 or f32, got '", o.dtype, "'");
  LATTICE_CHECK(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1,
                "--gpu-memory-utilization must be in (0, 1], got ", o.gpu_memory_utilization);
  LATTICE_CHECK(o.kv_cache_mb >= 0, "--kv-cache-mb must be > 0, got ", o.kv_cache_mb);
  LATTICE_CHECK(o.kv_cache_blocks >= 0 && o.kv_cache_blocks <= INT32_MAX,
                "--kv-cache-blocks must be >= 0 (0: size from --kv-cache-mb), got ", o.kv_cache_blocks);
  LATTICE_CHECK(o.block_size > 0 && o.block_size <= 1024, "--block-size must be in [1, 1024], got ", o.block_size);
  LATTICE_CHECK(o.limits.max_tokens_per_step > 0, "--max-tokens-per-step must be > 0, got ",
                o.limits.max_tokens_per_step);
  LATTICE_CHECK(o.limits.max_seqs > 0, "--max-seqs must be > 0, got ", o.limits.max_seqs);
  LATTICE_CHECK(o.tp >= 1 && o.pp >= 1 && o.dp >= 1, "--tp, --pp and --dp must be >= 1");
  return o;
}

std::set<std::string> engine_switches(std::set<std::string> own) {
  own.insert({"dummy-weights", "enable-prefix-caching", "no-enable-prefix-caching", "no-cuda-graphs", "enforce-eager",
              "async-scheduling", "no-async-scheduling",
              "enable-expert-parallel", "ep"});
  return own;
}

PrefixCaching prefix_caching(const EngineOptions& options, const LoadedEngine& engine) {
  std::string identity;
  if (std::ifstream config(options.model_dir + "/config.json"); config)
    identity.assign(std::istreambuf_iterator<char>(config), std::istreambuf_iterator<char>());
  identity += std::string("|") + dtype_name(engine.model->activation_dtype()) + (options.dummy_weights ? "|dummy" : "");
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : identity) h = (h ^ c) * 0x100000001b3ull;
  return {options.prefix_caching, h};
}

DType resolve_dtype(const std::string& flag, bool cuda, DType checkpoint_half_type) {
  if (!cuda) {
    LATTICE_CHECK(flag == "auto" || flag == "f32", "the CPU backend computes in f32; --dtype ", flag,
                  " needs --device cuda");
    return DType::f32;
  }
  if (flag == "bf16") return DType::bf16;
  if (flag == "f16") return DType::f16;
  if (flag == "f32") return DType::f32;
  return checkpoint_half_type == DType::f32 ? DType::bf16 : checkpoint_half_type;
}

namespace {

// Whether this rank runs on a GPU: --device, or with auto whether the build has CUDA and a GPU is visible.
bool use_cuda(const std::string& device) {
#ifdef LATTICE_HAVE_CUDA
  const kernels::cuda::DeviceInfo& info = kernels::cuda::device_info();
  if (device == "cuda")
    LATTICE_CHECK(info.count > 0, "--device cuda: no usable GPU (", info.reason, ")");
  return device == "cuda" || (device == "auto" && info.count > 0);
#else
  LATTICE_CHECK(device != "cuda", "--device cuda: this build has no CUDA backend (configure with nvcc present)");
  return false;
#endif
}

// KV cache blocks per rank: --kv-cache-blocks, --kv-cache-mb, or on a GPU the share of device memory that
// --gpu-memory-utilization leaves after the weights, the workspaces and the step buffers (already allocated).
int64_t kv_blocks(const EngineOptions& o, const KvCacheShape& kv, DType dtype, const DeviceContext* device,
                  size_t runner_bytes) {
  if (o.kv_cache_blocks > 0) return o.kv_cache_blocks;
  if (o.kv_cache_mb > 0 || !device) return kv.blocks_in(static_cast<size_t>(o.kv_cache_mb > 0 ? o.kv_cache_mb : 512) << 20, dtype);
#ifdef LATTICE_HAVE_CUDA
  return kv.blocks_in(gpu_kv_budget(device->total_bytes(), device->free_bytes(), o.gpu_memory_utilization,
                                    runner_bytes, kv.bytes_per_block(dtype)),
                      dtype);
#else
  (void)runner_bytes;
  LATTICE_THROW("a GPU KV cache needs the CUDA backend");
#endif
}

// tp x pp from a Slurm step with the same number of tasks on every node (SLURM_STEP_TASKS_PER_NODE "2(x3)" or
// "4"): tp = tasks per node, pp = nodes, when that is the whole MPI world. Empty otherwise (uneven nodes, or
// mpirun inside an allocation), leaving the flags' default.
std::optional<std::pair<int, int>> grid_from_slurm_step(int world_size) {
  const char* layout = std::getenv("SLURM_STEP_TASKS_PER_NODE");
  if (!layout) return std::nullopt;
  int tasks = 0, nodes = 1, consumed = 0;
  const bool uniform = std::sscanf(layout, "%d(x%d)%n", &tasks, &nodes, &consumed) == 2 ||
                       std::sscanf(layout, "%d%n", &tasks, &consumed) == 1;
  if (!uniform || layout[consumed] != '\0' || tasks < 1 || nodes < 1 || tasks * nodes != world_size)
    return std::nullopt;
  return std::make_pair(tasks, nodes);
}

}  // namespace

std::string LoadedEngine::device_name() const {
#ifdef LATTICE_HAVE_CUDA
  if (device) return device->name() + " (" + device->device().str() + ")";
#endif
  return "cpu";
}

int32_t LoadedEngine::max_top_k() const { return device ? kernels::cpu::kMaxTopK : 0; }

namespace {

// Why decode steps cannot replay CUDA graphs on this engine, or "" when they can.
std::string graphs_off_reason(const EngineOptions& options, const LoadedEngine& e) {
  if (!options.cuda_graphs) return "--no-cuda-graphs / --enforce-eager";
  if (e.ctx.topo.pp > 1) return "pipeline stages (--pp > 1) run their parts eagerly";
  if (e.model->config().is_moe()) return "MoE routing (ops::moe_group) waits on the host for the per-expert counts";
  if (e.ctx.topo.tp > 1 && std::string(e.ctx.tp->backend()) != "nccl")
    return std::string("the TP communicator (") + e.ctx.tp->backend() + ") waits on the host";
  return "";
}

// Runs `capture` (collective: every rank calls it at the same point) and returns "" when it succeeded on every rank
// of the job, else why not (this rank's error, or that another rank failed): TP ranks must run the same
// collectives each step, so graphs are on everywhere or nowhere.
std::string capture_on_every_rank(LoadedEngine& e, const std::function<void()>& capture) {
  std::string why;
  try {
    capture();
  } catch (const Error& err) {
    why = err.what();
  }
  if (e.ctx.control && e.ctx.control->world_min(why.empty() ? 1 : 0) == 0 && why.empty())
    why = "another rank could not capture its graphs";
  return why;
}

// Before the KV cache is sized from --gpu-memory-utilization: captures every decode graph once against a one-block
// provisional cache, measures the device memory that took and frees it, and keeps the reserve
// (cuda_graph_reserve) in e.graph_reserve_bytes for the sizing to leave free. Returns "" or why graphs are off.
std::string reserve_graph_memory(const EngineOptions& options, LoadedEngine& e, const ops::ExecContext& exec,
                                 const KvCacheShape& kv, DType dtype, bool report) {
  GraphCapture profile;
  const std::string why = capture_on_every_rank(e, [&] {
    profile = ModelRunner::profile_decode_graphs(*e.model, kv, dtype, exec, options.limits);
  });
  if (!why.empty()) return why;
  e.graph_reserve_bytes = static_cast<int64_t>(cuda_graph_reserve(profile.device_bytes));
  if (report)
    std::fprintf(stderr, "CUDA graphs: a profile capture of %lld decode graphs took %.1f MiB in %.2f s; %.1f MiB "
                 "reserved before sizing the KV cache\n", static_cast<long long>(profile.graphs),
                 static_cast<double>(profile.device_bytes) / 1048576.0, profile.seconds,
                 static_cast<double>(e.graph_reserve_bytes) / 1048576.0);
  return "";
}

// Captures the decode graphs of e.runner (GPU only; `why` is "" or why not, from graphs_off_reason or the profile),
// on every rank or on none, and reports what it did.
void capture_graphs(LoadedEngine& e, std::string why, bool report, bool tty) {
  GraphCapture done;
  if (why.empty()) {
    const DecodeBuckets& b = e.runner->decode_buckets();
    if (report)
      std::fprintf(stderr, "CUDA graphs: warming up and capturing %zu batch sizes x %zu contexts (up to %lld x %lld)%s",
                   b.batch_sizes().size(), b.context_sizes().size(), static_cast<long long>(b.batch_sizes().back()),
                   static_cast<long long>(b.context_sizes().back()), tty ? "" : "\n");
    why = capture_on_every_rank(e, [&] {
      done = e.runner->capture_decode_graphs([&](int64_t n, int64_t total) {
        if (report && tty) std::fprintf(stderr, "\rCUDA graphs: %lld / %lld captured", static_cast<long long>(n),
                                        static_cast<long long>(total));
      });
    });
    if (report && tty) std::fprintf(stderr, "\n");
    if (!why.empty()) e.runner->drop_decode_graphs();
  }
  if (why.empty()) e.graphs = done;
  e.graphs_off = why;
  if (!report) return;
  if (why.empty())
    std::fprintf(stderr, "CUDA graphs: %lld decode graphs in %.2f s, %.1f MiB of device memory\n",
                 static_cast<long long>(done.graphs), done.seconds, static_cast<double>(done.device_bytes) / 1048576.0);
  else
    std::fprintf(stderr, "CUDA graphs: off (%s); every step runs eagerly\n", why.c_str());
}

}  // namespace

LoadedEngine load_engine(const EngineOptions& options, parallel::MpiRuntime* mpi, bool quiet) {
  LoadedEngine e;
  const bool cuda = use_cuda(options.device);
  ops::ExecContext exec = ops::ExecContext::cpu();
  parallel::DeviceBinding binding;
  if (cuda) {
#ifdef LATTICE_HAVE_CUDA
    // One GPU per rank of the node where there are enough (NCCL between them), else ranks share (MPI staging).
    binding.index = mpi ? parallel::choose_device_communicator(*mpi).device_id : 0;
    e.device = std::make_shared<DeviceContext>(binding.index);
    binding.stream = e.device->stream();
    exec = e.device->exec();
#endif
  }
  int tp = options.tp, pp = options.pp;
  std::string grid_origin;
  if (mpi && !options.grid_given)
    if (auto grid = grid_from_slurm_step(mpi->world_size())) {
      std::tie(tp, pp) = *grid;
      grid_origin = " (from the Slurm step: " + std::to_string(tp) + (tp == 1 ? " task" : " tasks") + " per node on " +
                    std::to_string(pp) + (pp == 1 ? " node)" : " nodes)");
    }
  if (mpi) {
    e.ctx = parallel::make_parallel_context(*mpi, tp, pp, options.dp, e.device ? &binding : nullptr);
    // Ranks sharing a node share its cores, unless the user chose a thread count.
    if (!std::getenv("OMP_NUM_THREADS"))
      omp_set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / mpi->local_size()));
  } else {
    const int ranks = options.tp * options.pp * options.dp;
    const std::string dp = options.dp > 1 ? " --dp " + std::to_string(options.dp) : "";
    LATTICE_CHECK(ranks == 1, "--tp ", options.tp, " --pp ", options.pp, dp, " needs ", ranks,
                  " ranks: launch with mpirun -np ", ranks);
    e.ctx = parallel::make_single_process_context();
  }
  const parallel::Topology& topo = e.ctx.topo;
  const bool report = !quiet && topo.is_coordinator();

  LATTICE_CHECK(std::filesystem::is_directory(options.model_dir), "model directory '", options.model_dir,
                "' does not exist");
  const ModelConfig config = ModelConfig::from_file(options.model_dir + "/config.json");
#ifdef LATTICE_HAVE_CUDA
  if (e.device) {  // the attention's split-K scratch, before anything else takes the memory
    e.device->reserve_scratch(ops::attention_scratch_bytes(options.limits.max_seqs, config.num_heads / topo.tp,
                                                          config.head_dim, config.max_position_embeddings));
    exec = e.device->exec();
  }
#endif
  LoadOptions load;
  load.exec = exec;
  load.dummy_weights = options.dummy_weights;
  load.dtype = resolve_dtype(options.dtype, cuda,
                             options.dummy_weights ? DType::f32 : checkpoint_half_type(Checkpoint::open(options.model_dir)));
  if (report) {
#ifdef LATTICE_HAVE_CUDA
    if (e.device)
      std::fprintf(stderr, "device: %s (cuda:%d), %s\n", e.device->name().c_str(), binding.index,
                   dtype_name(load.dtype));
#endif
    if (!e.device) std::fprintf(stderr, "device: cpu, f32\n");
    if (topo.world_size > 1)
      std::fprintf(stderr, "parallel: %d ranks as %stp %d x pp %d%s; communicator: %s\n", topo.world_size,
                   topo.dp > 1 ? (std::to_string(topo.dp) + " replicas of ").c_str() : "", topo.tp, topo.pp,
                   grid_origin.c_str(), e.ctx.comm.describe().c_str());
  }

  const bool tty = isatty(STDERR_FILENO);
  int last_percent = -1;
  auto progress = [&](size_t done, size_t total) {
    const int percent = total ? static_cast<int>(100 * done / total) : 100;
    if (!report || percent == last_percent || (!tty && percent % 25 != 0 && done != total)) return;
    last_percent = percent;
    std::fprintf(stderr, "%s%s weights: %.1f / %.1f MiB (%d%%)%s", tty ? "\r" : "",
                 options.dummy_weights ? "generating" : "loading", done / 1048576.0, total / 1048576.0, percent,
                 tty && done != total ? "" : "\n");
  };
  const std::vector<int64_t> bounds = parallel::pipeline_layer_bounds(config.num_layers, topo.pp, options.pp_layers);
  ModelPartition part;
  part.tp = {topo.tp_rank, topo.tp};
  part.layer_begin = bounds[topo.pp_rank];
  part.layer_end = bounds[topo.pp_rank + 1];
  part.expert_parallel = options.expert_parallel;
  e.model = LlamaModel::load(options.model_dir, part, e.ctx.tp.get(), load, progress);

  KvCacheShape kv = e.model->lm_shape().kv;
  kv.block_size = options.block_size;
  size_t runner_bytes = 0;
#ifdef LATTICE_HAVE_CUDA
  if (e.device) {
    // Everything a step needs besides the cache, allocated before the cache takes the rest.
    e.model->reserve(options.limits.max_tokens_per_step);
    runner_bytes = ModelRunner::buffer_bytes(e.model->lm_shape(), load.dtype, options.limits);
  }
#endif
  // The decode graphs' memory, measured before the cache takes what is left (when it is sized from free memory;
  // a size given with --kv-cache-mb/--kv-cache-blocks is the user's, and the capture after it takes what it needs).
  std::string graphs_off = e.device ? graphs_off_reason(options, e) : "cpu";
  if (graphs_off.empty() && options.kv_cache_blocks == 0 && options.kv_cache_mb == 0)
    graphs_off = reserve_graph_memory(options, e, exec, kv, load.dtype, report);
  int64_t blocks = kv_blocks(options, kv, load.dtype, e.device.get(),
                             runner_bytes + static_cast<size_t>(e.graph_reserve_bytes));
  // One block layout valid on every rank (of every replica: rank 0 plans for each with this count).
  if (e.ctx.control) blocks = e.ctx.control->world_min(blocks);
  e.cache = std::make_unique<KvCache>(kv, static_cast<int32_t>(blocks), load.dtype, exec.device);
  e.runner = std::make_unique<ModelRunner>(*e.model, *e.cache, exec, options.limits);
  if (report)
    std::fprintf(stderr, "KV cache: %lld blocks of %lld tokens (%lld tokens, %.2f GiB %s) per rank\n",
                 static_cast<long long>(blocks), static_cast<long long>(options.block_size),
                 static_cast<long long>(blocks * options.block_size),
                 static_cast<double>(blocks * kv.bytes_per_block(load.dtype)) / (1 << 30), dtype_name(load.dtype));
  if (e.device)
    capture_graphs(e, graphs_off, report, tty);
  else
    e.graphs_off = graphs_off;
#ifdef LATTICE_HAVE_CUDA
  if (e.device) {
    e.device_total_bytes = static_cast<int64_t>(e.device->total_bytes());
    e.device_free_bytes = static_cast<int64_t>(e.device->free_bytes());
  }
#endif
  return e;
}

}  // namespace lattice::launcher
