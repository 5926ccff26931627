#include "launcher/engine_setup.h"

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "parallel/sharding.h"

namespace lattice::launcher {

EngineOptions engine_options(const CliArgs& args) {
  EngineOptions o;
  o.model_dir = args.require("model");
  o.kv_cache_mb = args.get_int("kv-cache-mb", o.kv_cache_mb);
  o.kv_cache_blocks = args.get_int("kv-cache-blocks", 0);
  o.block_size = args.get_int("block-size", o.block_size);
  o.tp = static_cast<int>(args.get_int("tp", 1));
  o.pp = static_cast<int>(args.get_int("pp", 1));
  if (auto layers = args.maybe("pp-layers"))
    for (int32_t n : parse_int_list(*layers, "--pp-layers")) o.pp_layers.push_back(n);
  LATTICE_CHECK(o.kv_cache_mb > 0, "--kv-cache-mb must be > 0, got ", o.kv_cache_mb);
  LATTICE_CHECK(o.kv_cache_blocks >= 0 && o.kv_cache_blocks <= INT32_MAX,
                "--kv-cache-blocks must be >= 0 (0: size from --kv-cache-mb), got ", o.kv_cache_blocks);
  LATTICE_CHECK(o.block_size > 0 && o.block_size <= 1024, "--block-size must be in [1, 1024], got ", o.block_size);
  LATTICE_CHECK(o.tp >= 1 && o.pp >= 1, "--tp and --pp must be >= 1");
  return o;
}

LoadedEngine load_engine(const EngineOptions& options, parallel::MpiRuntime* mpi, bool quiet) {
  LoadedEngine e;
  if (mpi) {
    e.ctx = parallel::make_mpi_context(*mpi, options.tp, options.pp);
    // Ranks sharing a node share its cores, unless the user chose a thread count.
    if (!std::getenv("OMP_NUM_THREADS"))
      omp_set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / mpi->local_size()));
  } else {
    LATTICE_CHECK(options.tp * options.pp == 1, "--tp ", options.tp, " --pp ", options.pp, " needs ",
                  options.tp * options.pp, " ranks: launch with mpirun -np ", options.tp * options.pp);
    e.ctx = parallel::make_single_process_context();
  }
  const parallel::Topology& topo = e.ctx.topo;
  const bool report = !quiet && topo.is_coordinator();
  if (report && topo.world_size > 1)
    std::fprintf(stderr, "parallel: %d ranks as tp %d x pp %d; communicator: %s (CPU tensors)\n", topo.world_size,
                 topo.tp, topo.pp, e.ctx.tp->backend());

  const bool tty = isatty(STDERR_FILENO);
  int last_percent = -1;
  auto progress = [&](size_t done, size_t total) {
    const int percent = total ? static_cast<int>(100 * done / total) : 100;
    if (!report || percent == last_percent || (!tty && percent % 25 != 0 && done != total)) return;
    last_percent = percent;
    std::fprintf(stderr, "%sloading weights: %.1f / %.1f MiB (%d%%)%s", tty ? "\r" : "", done / 1048576.0,
                 total / 1048576.0, percent, tty && done != total ? "" : "\n");
  };
  LATTICE_CHECK(std::filesystem::is_directory(options.model_dir), "model directory '", options.model_dir,
                "' does not exist");
  const ModelConfig config = ModelConfig::from_file(options.model_dir + "/config.json");
  const std::vector<int64_t> bounds = parallel::pipeline_layer_bounds(config.num_layers, topo.pp, options.pp_layers);
  ModelPartition part;
  part.tp = {topo.tp_rank, topo.tp};
  part.layer_begin = bounds[topo.pp_rank];
  part.layer_end = bounds[topo.pp_rank + 1];
  e.model = LlamaModel::load(options.model_dir, part, e.ctx.tp.get(), progress);

  KvCacheShape kv = e.model->lm_shape().kv;
  kv.block_size = options.block_size;
  int64_t blocks = options.kv_cache_blocks > 0 ? options.kv_cache_blocks
                                               : kv.blocks_in(static_cast<size_t>(options.kv_cache_mb) << 20, DType::f32);
  if (e.ctx.control) blocks = e.ctx.control->world_min(blocks);  // one block layout valid on every rank
  e.cache = std::make_unique<KvCache>(kv, static_cast<int32_t>(blocks));
  if (report)
    std::fprintf(stderr, "KV cache: %lld blocks of %lld tokens (%lld tokens) per rank\n", static_cast<long long>(blocks),
                 static_cast<long long>(options.block_size), static_cast<long long>(blocks * options.block_size));
  return e;
}

}  // namespace lattice::launcher
