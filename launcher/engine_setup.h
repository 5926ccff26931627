// Loading a model and sizing its KV cache from the shared command-line flags:
//   --model DIR  --kv-cache-mb MB (default 512)  --block-size TOKENS (default 16)
#pragma once

#include <memory>

#include "engine/kv_cache/kv_cache.h"
#include "launcher/cli_args.h"
#include "models/llama.h"

namespace lattice::launcher {

struct LoadedEngine {
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> cache;
};

// Prints loading progress (bytes and %) and the cache size to stderr unless quiet.
LoadedEngine load_engine(const CliArgs& args, bool quiet);

}  // namespace lattice::launcher
