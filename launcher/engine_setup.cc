#include "launcher/engine_setup.h"

#include <unistd.h>

#include <cstdio>

namespace lattice::launcher {

EngineOptions engine_options(const CliArgs& args) {
  EngineOptions o;
  o.model_dir = args.require("model");
  o.kv_cache_mb = args.get_int("kv-cache-mb", o.kv_cache_mb);
  o.block_size = args.get_int("block-size", o.block_size);
  LATTICE_CHECK(o.kv_cache_mb > 0, "--kv-cache-mb must be > 0, got ", o.kv_cache_mb);
  LATTICE_CHECK(o.block_size > 0 && o.block_size <= 1024, "--block-size must be in [1, 1024], got ", o.block_size);
  return o;
}

LoadedEngine load_engine(const EngineOptions& options, bool quiet) {
  const int64_t cache_mb = options.kv_cache_mb, block_size = options.block_size;

  const bool tty = isatty(STDERR_FILENO);
  int last_percent = -1;
  auto progress = [&](size_t done, size_t total) {
    const int percent = total ? static_cast<int>(100 * done / total) : 100;
    if (quiet || (percent == last_percent) || (!tty && percent % 25 != 0 && done != total)) return;
    last_percent = percent;
    std::fprintf(stderr, "%sloading weights: %.1f / %.1f MiB (%d%%)%s", tty ? "\r" : "", done / 1048576.0,
                 total / 1048576.0, percent, tty && done != total ? "" : "\n");
  };
  LoadedEngine e;
  e.model = LlamaModel::load(options.model_dir, {}, nullptr, progress);
  KvCacheShape kv = e.model->lm_shape().kv;
  kv.block_size = block_size;
  const int32_t blocks = kv.blocks_in(static_cast<size_t>(cache_mb) << 20, DType::f32);
  e.cache = std::make_unique<KvCache>(kv, blocks);
  if (!quiet)
    std::fprintf(stderr, "KV cache: %d blocks of %lld tokens (%lld tokens, %lld MiB)\n", blocks,
                 static_cast<long long>(block_size), static_cast<long long>(blocks) * block_size,
                 static_cast<long long>(cache_mb));
  return e;
}

}  // namespace lattice::launcher
