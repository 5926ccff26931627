#include "models/random_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/weights/safetensors_writer.h"
#include "kernels/cpu/convert.h"
#include "models/model_config.h"
#include "models/weight_table.h"

namespace lattice {

RandomLlamaSpec RandomLlamaSpec::preset(const std::string& name) {
  RandomLlamaSpec s;
  if (name == "tiny") return s;
  if (name == "bench") {
    s.vocab_size = 32000;
    s.hidden_size = 1024;
    s.intermediate_size = 2816;
    s.moe_intermediate_size = 704;
    s.num_layers = 8;
    s.num_heads = 16;
    s.num_kv_heads = 8;
    return s;
  }
  LATTICE_THROW("unknown model preset '", name, "' (known: tiny, bench)");
}

namespace {

// Uniform values of mean `mean` and standard deviation `stddev` from a 64-bit generator (the same on every
// platform), stored in `dtype`.
Tensor random_values(const std::vector<int64_t>& shape, double mean, double stddev, std::mt19937_64& rng,
                     DType dtype) {
  Tensor f = Tensor::empty(shape, DType::f32);
  const double half_width = stddev * std::sqrt(3.0);
  for (int64_t i = 0; i < f.numel(); ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
    f.data<float>()[i] = static_cast<float>(mean + (2 * u - 1) * half_width);
  }
  if (dtype == DType::f32) return f;
  Tensor h = Tensor::empty(shape, dtype);
  auto* out = static_cast<uint16_t*>(h.raw());
  for (int64_t i = 0; i < f.numel(); ++i)
    out[i] = dtype == DType::bf16 ? kernels::cpu::f32_to_bf16(f.data<float>()[i])
                                  : kernels::cpu::f32_to_f16(f.data<float>()[i]);
  return h;
}

}  // namespace

void write_random_llama(const std::string& dir, const RandomLlamaSpec& s) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const char* torch_dtype = s.dtype == DType::f32 ? "float32" : s.dtype == DType::bf16 ? "bfloat16" : "float16";
  nlohmann::ordered_json config = {
      {"architectures", {s.architecture}},
      {"model_type", s.architecture == "Qwen3ForCausalLM"      ? "qwen3"
                     : s.architecture == "MistralForCausalLM"  ? "mistral"
                     : s.architecture == "MixtralForCausalLM"  ? "mixtral"
                     : s.architecture == "Qwen3MoeForCausalLM" ? "qwen3_moe"
                                                               : "llama"},
      {"vocab_size", s.vocab_size},
      {"hidden_size", s.hidden_size},
      {"intermediate_size", s.intermediate_size},
      {"num_hidden_layers", s.num_layers},
      {"num_attention_heads", s.num_heads},
      {"num_key_value_heads", s.num_kv_heads},
      {"head_dim", s.head_dim > 0 ? s.head_dim : s.hidden_size / s.num_heads},
      {"max_position_embeddings", s.max_position_embeddings},
      {"rope_theta", 10000.0},
      {"rms_norm_eps", 1e-5},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", false},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
      {"torch_dtype", torch_dtype},
  };
  if (s.sliding_window > 0) config["sliding_window"] = s.sliding_window;
  if (s.architecture == "MixtralForCausalLM") {
    config["intermediate_size"] = s.moe_intermediate_size;
    config["num_local_experts"] = s.num_experts;
    config["num_experts_per_tok"] = s.num_experts_per_tok;
  } else if (s.architecture == "Qwen3MoeForCausalLM") {
    config["num_experts"] = s.num_experts;
    config["num_experts_per_tok"] = s.num_experts_per_tok;
    config["moe_intermediate_size"] = s.moe_intermediate_size;
    config["norm_topk_prob"] = s.norm_topk_prob;
    config["decoder_sparse_step"] = 1;
    config["mlp_only_layers"] = nlohmann::ordered_json::array();
  }
  const std::string config_path = (fs::path(dir) / "config.json").string();
  {
    std::ofstream out(config_path);
    out << config.dump(2) << "\n";
    LATTICE_CHECK(out.good(), "cannot write ", config_path);
  }
  const ModelConfig parsed = ModelConfig::from_file(config_path);
  std::mt19937_64 rng(s.seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const WeightSpec& spec : llama_weight_table(parsed)) {
    for (int64_t l = 0; l < (spec.per_layer ? s.num_layers : 1); ++l) {
      const bool is_norm = spec.shape.size() == 1 && spec.pattern.find("norm") != std::string::npos;
      // Norm gains near 1; matrices scaled so activations keep unit size through the layers.
      const double stddev = is_norm ? 0.1 : 1.0 / std::sqrt(static_cast<double>(spec.shape.back()));
      tensors.emplace_back(weight_name(spec, l), random_values(spec.shape, is_norm ? 1.0 : 0.0, stddev, rng, s.dtype));
    }
  }
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors);
}

}  // namespace lattice
