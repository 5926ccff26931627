#include "models/model_config.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"

namespace lattice {
namespace {

using nlohmann::json;

const std::vector<std::string> kArchitectures = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                                  "Qwen3ForCausalLM", "MixtralForCausalLM", "Qwen3MoeForCausalLM"};

// The JSON type of `v` in words, for messages ("a string", "an array", ...).
std::string type_words(const json& v) {
  const std::string name = v.type_name();
  return (name == "array" || name == "object" ? "an " : name == "null" ? "" : "a ") + name;
}

// Engine sizes, ids and positions are 32-bit: any integer field past that is a broken config, not a big model.
constexpr int64_t kMaxField = INT32_MAX;

int64_t checked_int(const json& v, const std::string& key, int64_t lo, const std::string& origin) {
  LATTICE_CHECK(v.is_number_integer(), origin, ": field '", key, "' must be an integer, got ", type_words(v), " ", v.dump());
  // Integers past int64 parse as unsigned; get<int64_t>() would wrap them.
  LATTICE_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(kMaxField), origin, ": field '", key,
                "' must be in [", lo, ", ", kMaxField, "], got ", v.dump());
  const int64_t x = v.get<int64_t>();
  LATTICE_CHECK(x >= lo && x <= kMaxField, origin, ": field '", key, "' must be in [", lo, ", ", kMaxField, "], got ", x);
  return x;
}

int64_t get_int(const json& j, const char* key, const std::string& origin) {
  LATTICE_CHECK(j.contains(key), origin, ": missing field '", key, "'");
  return checked_int(j[key], key, 1, origin);
}

int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return checked_int(j[key], key, 1, origin);
}

double get_number(const json& j, const char* key, double fallback, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  LATTICE_CHECK(j[key].is_number(), origin, ": field '", key, "' must be a number, got ", type_words(j[key]), " ", j[key].dump());
  return j[key].get<double>();
}

double get_positive(const json& j, const char* key, double fallback, const std::string& origin) {
  const double x = get_number(j, key, fallback, origin);
  LATTICE_CHECK(std::isfinite(x) && x > 0, origin, ": field '", key, "' must be a finite number > 0, got ", x);
  return x;
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  LATTICE_CHECK(j[key].is_boolean(), origin, ": field '", key, "' must be true or false, got ", type_words(j[key]), " ", j[key].dump());
  return j[key].get<bool>();
}

std::string get_string(const json& j, const char* key, const std::string& fallback, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  LATTICE_CHECK(j[key].is_string(), origin, ": field '", key, "' must be a string, got ", type_words(j[key]), " ", j[key].dump());
  return j[key].get<std::string>();
}

// eos_token_id: an id or a list of ids, each in [0, vocab_size); null means none.
std::vector<int32_t> token_ids(const json& value, const char* key, int64_t vocab_size, const std::string& origin) {
  if (value.is_null()) return {};
  LATTICE_CHECK(value.is_number_integer() || value.is_array(), origin, ": field '", key,
                "' must be a token id or a list of token ids, got ", type_words(value), " ", value.dump());
  std::vector<int32_t> ids;
  for (const json& v : value.is_array() ? value : json::array({value})) {
    const int64_t id = checked_int(v, key, 0, origin);
    LATTICE_CHECK(id < vocab_size, origin, ": field '", key, "' holds token id ", id, ", past vocab_size ", vocab_size);
    ids.push_back(static_cast<int32_t>(id));
  }
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
  c.num_kv_heads = get_int(j, "num_key_value_heads", c.num_heads, origin);
  c.head_dim = get_int(j, "head_dim", c.hidden_size / c.num_heads, origin);
  LATTICE_CHECK(c.head_dim > 0, origin, ": hidden_size ", c.hidden_size, " is smaller than num_attention_heads ", c.num_heads);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", origin);
  c.rope_theta = get_positive(j, "rope_theta", 10000.0, origin);
  c.rms_norm_eps = get_positive(j, "rms_norm_eps", 1e-6, origin);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false, origin);
  if (c.architecture == "Qwen2ForCausalLM") {
    c.qkv_bias = true;
  } else {
    c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", false, origin);
  }
  c.qk_norm = c.architecture == "Qwen3ForCausalLM" || c.architecture == "Qwen3MoeForCausalLM";
  if (c.architecture == "MixtralForCausalLM") {
    c.num_experts = get_int(j, "num_local_experts", origin);
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = true;
  } else if (c.architecture == "Qwen3MoeForCausalLM") {
    c.num_experts = get_int(j, "num_experts", origin);
    c.moe_intermediate_size = get_int(j, "moe_intermediate_size", origin);
    c.norm_topk_prob = get_bool(j, "norm_topk_prob", false, origin);
    // Dense MLP layers between the sparse ones are not supported: every layer must be a MoE layer.
    const int64_t step = get_int(j, "decoder_sparse_step", 1, origin);
    LATTICE_CHECK(step == 1, origin, ": decoder_sparse_step ", step,
                  " (dense MLP layers between MoE layers) is not supported; only 1 (every layer MoE)");
    LATTICE_CHECK(!j.contains("mlp_only_layers") || j["mlp_only_layers"].is_null() ||
                      (j["mlp_only_layers"].is_array() && j["mlp_only_layers"].empty()),
                  origin, ": mlp_only_layers ", j.value("mlp_only_layers", json()).dump(),
                  " (dense MLP layers) is not supported; only [] (every layer MoE)");
  }
  if (c.is_moe()) {
    c.num_experts_per_tok = get_int(j, "num_experts_per_tok", origin);
    LATTICE_CHECK(c.num_experts_per_tok <= c.num_experts, origin, ": num_experts_per_tok ", c.num_experts_per_tok,
                  " exceeds the ", c.num_experts, " experts");
  }
  const std::string act = get_string(j, "hidden_act", "silu", origin);
  LATTICE_CHECK(act == "silu", origin, ": hidden_act '", act, "' is not supported (only silu)");
  LATTICE_CHECK(c.num_heads % c.num_kv_heads == 0, origin, ": num_attention_heads ", c.num_heads,
                " is not a multiple of num_key_value_heads ", c.num_kv_heads);
  LATTICE_CHECK(c.head_dim % 2 == 0, origin, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  // Qwen2 configs carry a window they do not use (use_sliding_window false); it must still be sane.
  const int64_t window = get_int(j, "sliding_window", 0, origin);
  if (window > 0 && get_bool(j, "use_sliding_window",
                                 c.architecture == "MistralForCausalLM" || c.architecture == "MixtralForCausalLM", origin))
    c.sliding_window = window;
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    LATTICE_CHECK(rs.is_object(), origin, ": field 'rope_scaling' must be an object or null, got ", type_words(rs));
    const std::string type = get_string(rs, "rope_type", get_string(rs, "type", "default", origin), origin);
    if (type == "llama3") {
      c.rope_scaling.type = "llama3";
      c.rope_scaling.factor = get_positive(rs, "factor", 8.0, origin);
      c.rope_scaling.low_freq_factor = get_positive(rs, "low_freq_factor", 1.0, origin);
      c.rope_scaling.high_freq_factor = get_positive(rs, "high_freq_factor", 4.0, origin);
      c.rope_scaling.original_max_position_embeddings = get_int(rs, "original_max_position_embeddings", 8192, origin);
      LATTICE_CHECK(c.rope_scaling.high_freq_factor != c.rope_scaling.low_freq_factor, origin,
                    ": rope_scaling high_freq_factor equals low_freq_factor");
    } else {
      LATTICE_CHECK(type == "default", origin, ": rope_scaling type '", type,
                    "' is not supported (supported: llama3)");
    }
  }
  if (j.contains("eos_token_id")) c.eos_token_ids = token_ids(j["eos_token_id"], "eos_token_id", c.vocab_size, origin);
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null()) {
    const std::vector<int32_t> bos = token_ids(j["bos_token_id"], "bos_token_id", c.vocab_size, origin);
    LATTICE_CHECK(bos.size() == 1, origin, ": field 'bos_token_id' must be one token id");
    c.bos_token_id = bos[0];
  }
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
