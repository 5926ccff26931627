// config.json validation: every field of a broken config is refused with a message naming the field and the
// value (never a raw nlohmann type_error, never a silent truncation or a silently ignored value).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "models/model_config.h"

namespace lattice {
namespace {

using nlohmann::json;

// The tiny-llama fixture's config, as Hugging Face writes it.
json base_config() {
  return json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 128,
      "intermediate_size": 352, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
      "head_dim": 16, "max_position_embeddings": 512, "rope_theta": 10000.0, "rms_norm_eps": 1e-05,
      "hidden_act": "silu", "tie_word_embeddings": false, "attention_bias": false, "rope_scaling": null,
      "bos_token_id": 1, "eos_token_id": 2})");
}

// The error message of parsing `config`, or "" when it parses.
std::string error_of(const json& config) {
  try {
    ModelConfig::from_json_text(config.dump(), "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Parsing `config` fails with a message that holds every one of `parts`.
void expect_refused(const json& config, std::initializer_list<std::string> parts) {
  const std::string e = error_of(config);
  ASSERT_FALSE(e.empty()) << "accepted: " << config.dump();
  EXPECT_EQ(e.find("type_error"), std::string::npos) << e;
  for (const std::string& part : parts) EXPECT_NE(e.find(part), std::string::npos) << "'" << part << "' not in: " << e;
}

json with(const char* key, const json& value) {
  json c = base_config();
  c[key] = value;
  return c;
}

TEST(ModelConfig, TheFixtureParses) {
  const ModelConfig c = ModelConfig::from_json_text(base_config().dump(), "config.json");
  EXPECT_EQ(c.num_layers, 4);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(ModelConfig::from_json_text(with("eos_token_id", {2, 7}).dump(), "c").eos_token_ids, (std::vector<int32_t>{2, 7}));
  EXPECT_TRUE(ModelConfig::from_json_text(with("eos_token_id", nullptr).dump(), "c").eos_token_ids.empty());
}

TEST(ModelConfig, TokenIdsMustBeIdsOfTheVocabulary) {
  expect_refused(with("eos_token_id", "2"), {"'eos_token_id'", "token id", "\"2\""});  // was silently ignored
  expect_refused(with("eos_token_id", {2, "3"}), {"'eos_token_id'", "\"3\""});
  expect_refused(with("eos_token_id", 99999999999), {"'eos_token_id'", "99999999999"});  // was truncated to int32
  expect_refused(with("eos_token_id", 512), {"'eos_token_id'", "512", "vocab_size 512"});
  expect_refused(with("eos_token_id", -1), {"'eos_token_id'", "-1"});
  expect_refused(with("bos_token_id", "1"), {"'bos_token_id'"});
}

TEST(ModelConfig, IntegersOutOfRangeAreRefusedNotTruncated) {
  expect_refused(with("hidden_size", 99999999999), {"'hidden_size'", "99999999999"});
  expect_refused(with("num_hidden_layers", 0), {"'num_hidden_layers'", "got 0"});
  expect_refused(with("max_position_embeddings", int64_t{1} << 62), {"'max_position_embeddings'", "4611686018427387904"});
  expect_refused(with("vocab_size", json::parse("18446744073709551615")), {"'vocab_size'", "18446744073709551615"});
  expect_refused(with("num_attention_heads", 2.5), {"'num_attention_heads'", "must be an integer", "2.5"});
  json no_head_dim = with("hidden_size", 4);
  no_head_dim.erase("head_dim");  // the default, hidden_size / num_attention_heads, would be 0
  expect_refused(no_head_dim, {"hidden_size 4", "num_attention_heads 8"});
}

TEST(ModelConfig, SlidingWindowMustBePositive) {
  json mistral = with("architectures", {"MistralForCausalLM"});
  mistral["sliding_window"] = 128;  // masks attention; the context stays the model's
  EXPECT_EQ(ModelConfig::from_json_text(mistral.dump(), "c").sliding_window, 128);
  EXPECT_EQ(ModelConfig::from_json_text(mistral.dump(), "c").max_position_embeddings, 512);
  for (const json& bad : {json(0), json(-4096), json("4096")}) {
    mistral["sliding_window"] = bad;
    expect_refused(mistral, {"'sliding_window'"});
  }
  mistral["sliding_window"] = nullptr;  // no window
  EXPECT_EQ(ModelConfig::from_json_text(mistral.dump(), "c").sliding_window, 0);
  json qwen = with("architectures", {"Qwen2ForCausalLM"});
  qwen["sliding_window"] = 4096;  // present but unused (use_sliding_window defaults to false)
  EXPECT_EQ(ModelConfig::from_json_text(qwen.dump(), "c").sliding_window, 0);
}

TEST(ModelConfig, WrongTypesNameTheField) {
  expect_refused(with("tie_word_embeddings", "yes"), {"'tie_word_embeddings'", "true or false", "a string"});
  expect_refused(with("attention_bias", 1), {"'attention_bias'", "true or false"});
  expect_refused(with("hidden_act", 3), {"'hidden_act'", "must be a string"});
  expect_refused(with("rope_theta", "10000"), {"'rope_theta'", "must be a number"});
  expect_refused(with("rope_theta", -1.0), {"'rope_theta'", "> 0"});
  expect_refused(with("rms_norm_eps", 0), {"'rms_norm_eps'", "> 0"});
  expect_refused(with("rope_scaling", "llama3"), {"'rope_scaling'", "object"});
  expect_refused(with("rope_scaling", {{"rope_type", 3}}), {"'rope_type'", "must be a string"});
  expect_refused(with("rope_scaling", {{"rope_type", "llama3"}, {"original_max_position_embeddings", 8192.5}}),
                 {"'original_max_position_embeddings'", "must be an integer"});
  json mistral = with("architectures", {"MistralForCausalLM"});
  mistral["sliding_window"] = 128;
  mistral["use_sliding_window"] = "true";
  expect_refused(mistral, {"'use_sliding_window'", "true or false"});
}

}  // namespace
// Mixtral's expert fields (num_local_experts, intermediate_size as the expert size, always renormalised) and
// Qwen3-MoE's (num_experts, moe_intermediate_size, norm_topk_prob); dense layers between MoE layers are refused.
TEST(ModelConfig, MixturesOfExperts) {
  json mixtral = with("architectures", {"MixtralForCausalLM"});
  mixtral["num_local_experts"] = 8;
  mixtral["num_experts_per_tok"] = 2;
  const ModelConfig m = ModelConfig::from_json_text(mixtral.dump(), "c");
  EXPECT_EQ(m.num_experts, 8);
  EXPECT_EQ(m.num_experts_per_tok, 2);
  EXPECT_EQ(m.moe_intermediate_size, m.intermediate_size);
  EXPECT_TRUE(m.norm_topk_prob);
  EXPECT_FALSE(m.qk_norm);
  json no_experts = mixtral;
  no_experts.erase("num_local_experts");
  expect_refused(no_experts, {"missing field 'num_local_experts'"});
  mixtral["num_experts_per_tok"] = 9;
  expect_refused(mixtral, {"num_experts_per_tok 9", "8 experts"});

  json qwen = with("architectures", {"Qwen3MoeForCausalLM"});
  qwen["num_experts"] = 128;
  qwen["num_experts_per_tok"] = 8;
  qwen["moe_intermediate_size"] = 768;
  const ModelConfig q = ModelConfig::from_json_text(qwen.dump(), "c");
  EXPECT_EQ(q.num_experts, 128);
  EXPECT_EQ(q.moe_intermediate_size, 768);
  EXPECT_FALSE(q.norm_topk_prob);  // the Hugging Face default
  EXPECT_TRUE(q.qk_norm);
  qwen["norm_topk_prob"] = true;
  qwen["decoder_sparse_step"] = 1;
  qwen["mlp_only_layers"] = json::array();
  EXPECT_TRUE(ModelConfig::from_json_text(qwen.dump(), "c").norm_topk_prob);
  qwen["decoder_sparse_step"] = 2;
  expect_refused(qwen, {"decoder_sparse_step 2", "not supported"});
  qwen["decoder_sparse_step"] = 1;
  qwen["mlp_only_layers"] = {0, 3};
  expect_refused(qwen, {"mlp_only_layers [0,3]", "not supported"});
}

}  // namespace lattice
