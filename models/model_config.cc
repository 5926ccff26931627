#include "models/model_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"

namespace lattice {
namespace {

using nlohmann::json;

const std::vector<std::string> kArchitectures = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};

int64_t get_int(const json& j, const char* key, const std::string& origin) {
  LATTICE_CHECK(j.contains(key), origin, ": missing field '", key, "'");
  LATTICE_CHECK(j[key].is_number_integer() && j[key].get<int64_t>() > 0, origin, ": field '", key,
                "' must be a positive integer");
  return j[key].get<int64_t>();
}

double get_number(const json& j, const char* key, double fallback, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  LATTICE_CHECK(j[key].is_number(), origin, ": field '", key, "' must be a number");
  return j[key].get<double>();
}

std::vector<int32_t> token_ids(const json& value) {
  if (value.is_number_integer()) return {value.get<int32_t>()};
  std::vector<int32_t> ids;
  if (value.is_array())
    for (const json& v : value)
      if (v.is_number_integer()) ids.push_back(v.get<int32_t>());
  return ids;
}

}  // namespace

std::string supported_architectures() {
  std::string out;
  for (const auto& a : kArchitectures) out += (out.empty() ? "" : ", ") + a;
  return out;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  LATTICE_CHECK(in.good(), "cannot read model config ", path);
  std::stringstream text;
  text << in.rdbuf();
  return from_json_text(text.str(), path);
}

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    LATTICE_THROW(origin, ": not valid JSON: ", e.what());
  }
  LATTICE_CHECK(j.is_object(), origin, ": config is not a JSON object");
  ModelConfig c;
  LATTICE_CHECK(j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                    j["architectures"][0].is_string(),
                origin, ": missing 'architectures' (supported: ", supported_architectures(), ")");
  c.architecture = j["architectures"][0].get<std::string>();
  LATTICE_CHECK(std::find(kArchitectures.begin(), kArchitectures.end(), c.architecture) != kArchitectures.end(),
                origin, ": unsupported architecture '", c.architecture, "' (supported: ", supported_architectures(),
                ")");
  c.vocab_size = get_int(j, "vocab_size", origin);
  c.hidden_size = get_int(j, "hidden_size", origin);
  c.intermediate_size = get_int(j, "intermediate_size", origin);
  c.num_layers = get_int(j, "num_hidden_layers", origin);
  c.num_heads = get_int(j, "num_attention_heads", origin);
  c.num_kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                       ? get_int(j, "num_key_value_heads", origin)
                       : c.num_heads;
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null() ? get_int(j, "head_dim", origin)
                                                                   : c.hidden_size / c.num_heads;
  c.max_position_embeddings = get_int(j, "max_position_embeddings", origin);
  c.rope_theta = get_number(j, "rope_theta", 10000.0, origin);
  c.rms_norm_eps = get_number(j, "rms_norm_eps", 1e-6, origin);
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  if (c.architecture == "Qwen2ForCausalLM") {
    c.qkv_bias = true;
  } else {
    c.qkv_bias = c.o_bias = j.value("attention_bias", false);
  }
  LATTICE_CHECK(j.value("hidden_act", std::string("silu")) == "silu", origin, ": hidden_act '",
                j.value("hidden_act", std::string()), "' is not supported (only silu)");
  LATTICE_CHECK(c.num_heads % c.num_kv_heads == 0, origin, ": num_attention_heads ", c.num_heads,
                " is not a multiple of num_key_value_heads ", c.num_kv_heads);
  LATTICE_CHECK(c.head_dim % 2 == 0, origin, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  // Sliding-window attention is not implemented: positions are capped at the window, where it is exact.
  if (j.contains("sliding_window") && j["sliding_window"].is_number_integer() &&
      j.value("use_sliding_window", c.architecture == "MistralForCausalLM")) {
    c.max_position_embeddings = std::min(c.max_position_embeddings, j["sliding_window"].get<int64_t>());
  }
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const json& rs = j["rope_scaling"];
    std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
    if (type == "llama3") {
      c.rope_scaling.type = "llama3";
      c.rope_scaling.factor = get_number(rs, "factor", 8.0, origin);
      c.rope_scaling.low_freq_factor = get_number(rs, "low_freq_factor", 1.0, origin);
      c.rope_scaling.high_freq_factor = get_number(rs, "high_freq_factor", 4.0, origin);
      c.rope_scaling.original_max_position_embeddings =
          static_cast<int64_t>(get_number(rs, "original_max_position_embeddings", 8192, origin));
      LATTICE_CHECK(c.rope_scaling.high_freq_factor != c.rope_scaling.low_freq_factor, origin,
                    ": rope_scaling high_freq_factor equals low_freq_factor");
    } else {
      LATTICE_CHECK(type == "default", origin, ": rope_scaling type '", type,
                    "' is not supported (supported: llama3)");
    }
  }
  if (j.contains("eos_token_id")) c.eos_token_ids = token_ids(j["eos_token_id"]);
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"];
  return c;
}

std::vector<float> ModelConfig::rope_inv_freq() const {
  const int64_t half = head_dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    double freq = 1.0 / std::pow(rope_theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
    if (rope_scaling.type == "llama3") {
      const double old_len = static_cast<double>(rope_scaling.original_max_position_embeddings);
      const double low_wavelen = old_len / rope_scaling.low_freq_factor;
      const double high_wavelen = old_len / rope_scaling.high_freq_factor;
      const double wavelen = 2 * M_PI / freq;
      if (wavelen > low_wavelen) {
        freq /= rope_scaling.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_len / wavelen - rope_scaling.low_freq_factor) /
                              (rope_scaling.high_freq_factor - rope_scaling.low_freq_factor);
        freq = (1 - smooth) * freq / rope_scaling.factor + smooth * freq;
      }
    }
    inv[i] = static_cast<float>(freq);
  }
  return inv;
}

}  // namespace lattice
