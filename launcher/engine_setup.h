// Loading a model and sizing its KV cache from the shared command-line flags:
//   --model DIR  --kv-cache-mb MB (default 512)  --block-size TOKENS (default 16)
#pragma once

#include <memory>

#include "engine/kv_cache/kv_cache.h"
#include "launcher/cli_args.h"
#include "models/llama.h"

namespace lattice::launcher {

struct EngineOptions {
  std::string model_dir;
  int64_t kv_cache_mb = 512;
  int64_t block_size = 16;
};

// Reads and checks the flags above (so that unknown flags can be rejected before a slow load).
EngineOptions engine_options(const CliArgs& args);

struct LoadedEngine {
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> cache;
};

// Prints loading progress (bytes and %) and the cache size to stderr unless quiet.
LoadedEngine load_engine(const EngineOptions& options, bool quiet);

}  // namespace lattice::launcher
