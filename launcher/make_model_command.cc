// lattice make-model: writes a deterministic random-weight Llama, Qwen3, Mixtral or Qwen3-MoE checkpoint.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "engine/core/error.h"
#include "launcher/cli_args.h"
#include "launcher/commands.h"
#include "engine/tokenizer/tokenizer.h"
#include "models/random_checkpoint.h"

namespace lattice::launcher {

int make_model_command(const Args& argv, parallel::MpiRuntime*) {
  const CliArgs args(argv, {"help"});
  if (args.has("help")) {
    std::puts("usage: lattice make-model --out DIR [--preset tiny|bench] [--arch llama|qwen3|mixtral|qwen3_moe]\n"
              "                          [--dtype f32|bf16|f16]\n"
              "                          [--seed S] [--tokenizer-from DIR]  (copy a tokenizer whose vocabulary fits)\n"
              "  tiny: vocab 512, hidden 128, 4 layers, 8 heads / 4 KV heads (the demo model)\n"
              "  bench: vocab 32000, hidden 1024, 8 layers, 16 heads / 8 KV heads, intermediate 2816 (~160M)\n"
              "  --arch qwen3: Qwen3ForCausalLM, with q/k norms and head_dim twice hidden / heads (as Qwen3-0.6B)\n"
              "  --arch mixtral: MixtralForCausalLM, 8 experts per layer, 2 per token (intermediate 96; bench: 704)\n"
              "  --arch qwen3_moe: Qwen3MoeForCausalLM, Qwen3's attention with Mixtral's expert shape, norm_topk_prob");
    return 0;
  }
  const std::string out = args.require("out");
  RandomLlamaSpec spec = RandomLlamaSpec::preset(args.get("preset", "tiny"));
  const std::string arch = args.get("arch", "llama");
  LATTICE_CHECK(arch == "llama" || arch == "qwen3" || arch == "mixtral" || arch == "qwen3_moe",
                "--arch must be llama, qwen3, mixtral or qwen3_moe, got '", arch, "'");
  if (arch == "qwen3" || arch == "qwen3_moe") spec.head_dim = 2 * spec.hidden_size / spec.num_heads;
  if (arch == "qwen3") spec.architecture = "Qwen3ForCausalLM";
  if (arch == "mixtral") spec.architecture = "MixtralForCausalLM";
  if (arch == "qwen3_moe") spec.architecture = "Qwen3MoeForCausalLM";
  const std::string dtype = args.get("dtype", "f32");
  LATTICE_CHECK(dtype == "f32" || dtype == "bf16" || dtype == "f16", "--dtype must be f32, bf16 or f16, got '", dtype, "'");
  spec.dtype = dtype == "f32" ? DType::f32 : dtype == "bf16" ? DType::bf16 : DType::f16;
  spec.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  const std::optional<std::string> tokenizer_dir = args.maybe("tokenizer-from");
  args.reject_unknown();
  write_random_llama(out, spec);
  if (tokenizer_dir) {
    namespace fs = std::filesystem;
    const int32_t vocab = Tokenizer::from_dir(*tokenizer_dir).vocab_size();
    LATTICE_CHECK(vocab <= spec.vocab_size, "the tokenizer in ", *tokenizer_dir, " has ", vocab,
                  " ids, more than the model's vocabulary of ", spec.vocab_size);
    for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
      if (fs::exists(fs::path(*tokenizer_dir) / file))
        fs::copy_file(fs::path(*tokenizer_dir) / file, fs::path(out) / file, fs::copy_options::overwrite_existing);
  }
  std::fprintf(stderr, "wrote %s/config.json and %s/model.safetensors\n", out.c_str(), out.c_str());
  return 0;
}

}  // namespace lattice::launcher
