// Loading a model (or this rank's part of it) and sizing its KV cache from the shared command-line flags:
//   --model DIR  --kv-cache-mb MB (default 512, per rank) or --kv-cache-blocks N  --block-size TOKENS (16)
//   --tp N --pp N (default 1; their product must be the number of MPI ranks)  --pp-layers 10,11,11
#pragma once

#include <memory>
#include <vector>

#include "engine/kv_cache/kv_cache.h"
#include "launcher/cli_args.h"
#include "models/llama.h"
#include "parallel/mpi_runtime.h"

namespace lattice::launcher {

struct EngineOptions {
  std::string model_dir;
  int64_t kv_cache_mb = 512;
  int64_t kv_cache_blocks = 0;  // when > 0, overrides kv_cache_mb
  int64_t block_size = 16;
  int tp = 1;
  int pp = 1;
  std::vector<int64_t> pp_layers;
};

// Reads and checks the flags above (so that unknown flags can be rejected before a slow load).
EngineOptions engine_options(const CliArgs& args);

struct LoadedEngine {
  parallel::ParallelContext ctx;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> cache;  // every rank has the same number of blocks
};

// `mpi` is null outside mpirun. Prints loading progress (bytes and %), the grid and the cache size to
// stderr on rank 0 unless quiet.
LoadedEngine load_engine(const EngineOptions& options, parallel::MpiRuntime* mpi, bool quiet);

}  // namespace lattice::launcher
