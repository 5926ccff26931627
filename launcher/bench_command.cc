// lattice bench: prefill and decode speed of a model on this machine, reported next to the machine's
// measured ceilings (read bandwidth for decode, sgemm rate for prefill).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "engine/kv_cache/block_manager.h"
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
  double weight_bytes;   // bytes of weights read per step (f32)
};

ModelCost model_cost(const ModelConfig& c) {
  const double h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const double per_layer = h * q * 2 + h * kv * 2 + 3 * h * c.intermediate_size + 2 * h;
  const double params = c.num_layers * per_layer + c.vocab_size * h;
  const double embedding = c.tie_word_embeddings ? 0 : c.vocab_size * h;
  return {params + embedding + h, params, (params + h) * 4};
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
  const CliArgs args(argv, {"json", "help"});
  if (args.has("help")) {
    std::puts("usage: lattice bench --model DIR [--batch B] [--input-len I] [--output-len O] [--json]\n"
              "  defaults: batch 1, input 128, output 128; also --kv-cache-mb, --block-size, --seed");
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

  const double bandwidth = measure_read_bandwidth_gbs();
  const double sgemm = measure_sgemm_gflops(1024, 1024, 1024);

  BlockManager blocks(e.cache->num_blocks(), static_cast<int32_t>(e.cache->shape().block_size));
  std::mt19937 rng(static_cast<uint32_t>(seed));
  StepBatch prefill;
  for (int64_t s = 0; s < batch; ++s) {
    SequenceStep step;
    step.seq_id = s;
    for (int64_t i = 0; i < input_len; ++i) step.tokens.push_back(static_cast<int32_t>(rng() % c.vocab_size));
    LATTICE_CHECK(blocks.grow(s, input_len + output_len), "the KV cache cannot hold ", batch, " x ",
                  input_len + output_len, " tokens; raise --kv-cache-mb");
    step.block_table = blocks.table(s);
    prefill.seqs.push_back(std::move(step));
  }
  auto start = std::chrono::steady_clock::now();
  StepOutput out = e.model->forward(prefill, *e.cache);
  const double prefill_s = seconds_since(start);

  StepBatch decode = prefill;
  start = std::chrono::steady_clock::now();
  for (int64_t t = 0; t < output_len; ++t) {
    for (int64_t s = 0; s < batch; ++s) {
      const Tensor logits = out.next_token_logits(s);
      const float* l = logits.data<float>();
      decode.seqs[s].start_pos = input_len + t;
      decode.seqs[s].tokens = {static_cast<int32_t>(std::max_element(l, l + c.vocab_size) - l)};
    }
    out = e.model->forward(decode, *e.cache);
  }
  const double decode_s = seconds_since(start);

  const ModelCost cost = model_cost(c);
  const double prefill_tokens = static_cast<double>(batch * input_len);
  const double prefill_gflops = (2 * cost.matmul_params * prefill_tokens +
                                 batch * attention_flops(c, 0, static_cast<double>(input_len))) / prefill_s / 1e9;
  // Decode reads every weight once per step plus each sequence's K/V so far.
  const double kv_bytes_per_step = static_cast<double>(batch) * (input_len + output_len / 2.0) *
                                   e.cache->shape().bytes_per_block(DType::f32) / e.cache->shape().block_size;
  const double decode_gbs = (cost.weight_bytes + kv_bytes_per_step) * output_len / decode_s / 1e9;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_mib = usage.ru_maxrss / 1024.0;

  nlohmann::ordered_json j = {
      {"model", engine_flags.model_dir},
      {"params_millions", cost.total_params / 1e6},
      {"matmul_params_millions", cost.matmul_params / 1e6},
      {"threads", omp_get_max_threads()},
      {"blas_core", blas_selection_note(kernels::cpu::blas_core_name())},
      {"batch", batch},
      {"input_len", input_len},
      {"output_len", output_len},
      {"prefill_tokens_per_s", prefill_tokens / prefill_s},
      {"prefill_gflops", prefill_gflops},
      {"sgemm_gflops", sgemm},
      {"prefill_vs_sgemm", prefill_gflops / sgemm},
      {"decode_tokens_per_s", batch * output_len / decode_s},
      {"decode_gb_per_s", decode_gbs},
      {"read_bandwidth_gb_per_s", bandwidth},
      {"decode_vs_bandwidth", decode_gbs / bandwidth},
      {"peak_memory_mib", peak_mib},
  };
  if (json_out) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model %s: %.1fM params (%.1fM in matmuls), %d threads, BLAS core %s\n", engine_flags.model_dir.c_str(),
              cost.total_params / 1e6, cost.matmul_params / 1e6, omp_get_max_threads(), blas_selection_note(kernels::cpu::blas_core_name()).c_str());
  std::printf("%-28s %12s\n", "metric", "value");
  std::printf("%-28s %12.1f\n", "prefill tokens/s", prefill_tokens / prefill_s);
  std::printf("%-28s %12.1f\n", "prefill GFLOP/s", prefill_gflops);
  std::printf("%-28s %12.1f\n", "sgemm GFLOP/s (1024^3)", sgemm);
  std::printf("%-28s %11.0f%%\n", "prefill / sgemm", 100 * prefill_gflops / sgemm);
  std::printf("%-28s %12.2f\n", "decode tokens/s", batch * output_len / decode_s);
  std::printf("%-28s %12.2f\n", "decode GB/s", decode_gbs);
  std::printf("%-28s %12.2f\n", "read bandwidth GB/s", bandwidth);
  std::printf("%-28s %11.0f%%\n", "decode / bandwidth", 100 * decode_gbs / bandwidth);
  std::printf("%-28s %12.1f\n", "peak memory MiB", peak_mib);
  return 0;
}

}  // namespace lattice::launcher
