// Loading a model (or this rank's part of it) onto its device and sizing its KV cache from the shared flags:
//   --model DIR  --device cuda|cpu (default: cuda when a GPU is visible)  --dtype auto|bf16|f16|f32
//   --gpu-memory-utilization F (default 0.90: the KV cache takes what is left of that share of the GPU)
//   --kv-cache-mb MB or --kv-cache-blocks N (override; on the CPU the default is 512 MB per rank)
//   --block-size TOKENS (16)  --max-tokens-per-step N (512)  --max-seqs N (256)  --dummy-weights
//   --tp N --pp N --dp N (dp replicas of a tp x pp grid; the product must be the number of MPI ranks; default 1,
//   or under srun with none of the three given tp = tasks per node and pp = nodes when the step has the same
//   number of tasks on every node; replicas are never derived: pass --dp)
//   --pp-layers 10,11,11
//   --enable-expert-parallel (alias --ep): a MoE model's experts split whole over the TP group's ranks instead
//   of each expert split over them
//   --enable-prefix-caching (the default) | --no-enable-prefix-caching
//   --no-cuda-graphs (alias --enforce-eager): decode steps run eagerly instead of replaying captured CUDA graphs
//   --async-scheduling | --no-async-scheduling (the default): plan pure-decode steps ahead of the tokens
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/kv_cache/block_manager.h"
#include "engine/kv_cache/kv_cache.h"
#include "engine/model_runner.h"
#include "launcher/cli_args.h"
#include "models/llama.h"
#include "parallel/mpi_runtime.h"

namespace lattice {
class DeviceContext;
}

namespace lattice::launcher {

struct EngineOptions {
  std::string model_dir;
  std::string device = "auto";  // auto | cuda | cpu
  std::string dtype = "auto";   // auto | bf16 | f16 | f32
  double gpu_memory_utilization = 0.90;
  int64_t kv_cache_mb = 0;      // 0: 512 on the CPU, from gpu_memory_utilization on a GPU
  int64_t kv_cache_blocks = 0;  // when > 0, overrides kv_cache_mb
  int64_t block_size = 16;
  RunnerLimits limits;
  bool dummy_weights = false;
  int tp = 1;
  int pp = 1;
  int dp = 1;               // data-parallel replicas, each a whole tp x pp copy of the model
  bool grid_given = false;  // --tp, --pp or --dp was on the command line (else a Slurm step may choose tp, pp)
  std::vector<int64_t> pp_layers;
  bool expert_parallel = false;  // --enable-expert-parallel / --ep
  bool prefix_caching = true;  // reuse the KV blocks of prompt prefixes already computed
  bool cuda_graphs = true;     // on a GPU, replay pure-decode steps from graphs captured at start-up
  bool async_scheduling = false;  // SchedulerOptions::async_scheduling (docs/cuda.md: why off by default)
};

// A command's own switches plus the engine's (--dummy-weights, --[no-]enable-prefix-caching).
std::set<std::string> engine_switches(std::set<std::string> own);

// Reads and checks the flags above (so that unknown flags can be rejected before a slow load).
EngineOptions engine_options(const CliArgs& args);

// The activation dtype for a device: --dtype, or with auto the checkpoint's half type on a GPU (bf16 for f32
// checkpoints and dummy weights) and f32 on the CPU, which computes in f32 only.
DType resolve_dtype(const std::string& flag, bool cuda, DType checkpoint_half_type);

struct LoadedEngine {
  parallel::ParallelContext ctx;
  std::shared_ptr<DeviceContext> device;  // null on the CPU
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> cache;         // every rank has the same number of blocks
  std::unique_ptr<ModelRunner> runner;
  GraphCapture graphs;      // the decode CUDA graphs' capture (zeros when there are none)
  std::string graphs_off;   // why decode steps run eagerly ("" when graphs replay them; "cpu" on the CPU)
  // Device bytes the KV cache's sizing left free for the decode graphs (cuda_graph_reserve of a profile capture);
  // 0 without graphs or with a cache size given by flag.
  int64_t graph_reserve_bytes = 0;
  int64_t device_total_bytes = 0, device_free_bytes = 0;  // the GPU's memory once everything is set up (0 on the CPU)

  std::string device_name() const;  // "NVIDIA H200 (cuda:0)" or "cpu"
  // The largest top_k (short of the vocabulary) requests may ask for: the GPU sampler's limit, none on the CPU.
  int32_t max_top_k() const;
};

// The scheduler's prefix caching for the loaded model: on or off per the flags, its blocks' hashes salted with
// the model's config.json, dtype and weights source (a cache only ever holds one model's K/V).
PrefixCaching prefix_caching(const EngineOptions& options, const LoadedEngine& engine);

// `mpi` is null outside mpirun. Prints the device, loading progress (bytes and %), the grid and the cache size
// to stderr on rank 0 unless quiet.
LoadedEngine load_engine(const EngineOptions& options, parallel::MpiRuntime* mpi, bool quiet);

}  // namespace lattice::launcher
