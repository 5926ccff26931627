// Loading checkpoints: config parsing for each supported architecture, and every bad-input case is a
// clear error naming what is wrong (never a crash or silent garbage).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "engine/weights/safetensors_writer.h"
#include "kernels/cpu/convert.h"
#include "models/llama.h"
#include "tests/models/run_step.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Loading : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = testing::data_dir() + "/tiny-llama/f32";
    dir_ = fs::temp_directory_path() / ("lattice_load_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ifstream in(src_ + "/config.json");
    config_ = json::parse(in);
    Checkpoint ckpt = Checkpoint::open(src_);
    for (const std::string& name : ckpt.names()) weights_.emplace_back(name, ckpt.tensor(name).clone());
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write() {
    std::ofstream(dir_ / "config.json") << config_.dump();
    write_safetensors((dir_ / "model.safetensors").string(), weights_);
  }

  std::string load_error() {
    write();
    try {
      LlamaModel::load(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  Tensor& weight(const std::string& name) {
    for (auto& [n, t] : weights_)
      if (n == name) return t;
    throw std::runtime_error("no weight " + name);
  }

  // Last-position logits of a prompt on the model in dir_.
  std::vector<float> logits(const std::vector<int32_t>& prompt) {
    write();
    auto model = LlamaModel::load(dir_.string());
    KvCache cache(model->lm_shape().kv, 8);
    StepBatch b;
    b.seqs.push_back({0, prompt, 0, {0, 1, 2, 3}, false});
    const Tensor out = testing::forward(*model, cache, b).logits;
    return {out.data<float>(), out.data<float>() + out.numel()};
  }

  std::string src_;
  fs::path dir_;
  json config_;
  std::vector<std::pair<std::string, Tensor>> weights_;
};

TEST_F(Loading, UnsupportedArchitectureListsTheSupportedOnes) {
  config_["architectures"] = {"GPTNeoXForCausalLM"};
  const std::string e = load_error();
  EXPECT_NE(e.find("unsupported architecture 'GPTNeoXForCausalLM'"), std::string::npos) << e;
  EXPECT_NE(e.find("LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"), std::string::npos) << e;
}

TEST_F(Loading, MissingTensorIsNamed) {
  std::erase_if(weights_, [](const auto& w) { return w.first == "model.layers.2.mlp.up_proj.weight"; });
  EXPECT_NE(load_error().find("missing weight 'model.layers.2.mlp.up_proj.weight'"), std::string::npos);
}

TEST_F(Loading, WrongShapeNamesBothShapes) {
  weight("model.layers.1.self_attn.k_proj.weight") = Tensor::zeros({32, 128}, DType::f32);
  const std::string e = load_error();
  EXPECT_NE(e.find("'model.layers.1.self_attn.k_proj.weight' has shape [32, 128], config.json expects [64, 128]"),
            std::string::npos)
      << e;
}

TEST_F(Loading, FewerLayersThanTheCheckpointIsRefusedNamingTheUnusedTensors) {
  config_["num_hidden_layers"] = 2;  // the checkpoint has 4: a partial model would run silently
  const std::string e = load_error();
  EXPECT_NE(e.find("checkpoint holds tensors not used by this config (num_hidden_layers 2): "
                   "model.layers.2.input_layernorm.weight, model.layers.2.mlp.down_proj.weight"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(", ... (18 tensors)"), std::string::npos) << e;
}

TEST_F(Loading, BadConfigFieldsAreNamed) {
  config_.erase("hidden_size");
  EXPECT_NE(load_error().find("missing field 'hidden_size'"), std::string::npos);
  SetUp();
  config_["num_key_value_heads"] = 3;
  EXPECT_NE(load_error().find("not a multiple of num_key_value_heads 3"), std::string::npos);
  SetUp();
  config_["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(load_error().find("rope_scaling type 'yarn' is not supported"), std::string::npos);
}

TEST_F(Loading, ForwardRejectsPositionsPastTheModelAndTokensPastTheVocabulary) {
  write();
  auto model = LlamaModel::load(dir_.string());
  KvCache cache(model->lm_shape().kv, 40);
  std::vector<int32_t> table(40);
  std::iota(table.begin(), table.end(), 0);
  StepBatch b;
  b.seqs.push_back({0, std::vector<int32_t>(10, 1), 505, table, false});
  EXPECT_THROW(testing::forward(*model, cache, b), Error);  // reaches position 515 > 512
  b.seqs[0] = {0, {1, 512}, 0, table, false};
  try {
    testing::forward(*model, cache, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 512 is out of range for vocabulary size 512"), std::string::npos);
  }
}

TEST_F(Loading, Qwen2AddsQkvBiases) {
  const std::vector<int32_t> prompt = {1, 20, 30, 40};
  const std::vector<float> llama = logits(prompt);
  config_["architectures"] = {"Qwen2ForCausalLM"};
  EXPECT_NE(load_error().find("missing weight 'model.layers.0.self_attn.q_proj.bias'"), std::string::npos);
  for (int l = 0; l < 4; ++l)
    for (const auto& [proj, n] : {std::pair<const char*, int64_t>{"q", 128}, {"k", 64}, {"v", 64}})
      weights_.emplace_back("model.layers." + std::to_string(l) + ".self_attn." + proj + "_proj.bias",
                            Tensor::zeros({n}, DType::f32));
  const std::vector<float> zero_bias = logits(prompt);
  EXPECT_TRUE(testing::all_close(zero_bias.data(), llama.data(), 512, 1e-6, 1e-6));
  // A v bias adds exactly W_o e to every attention output of layer 0 (softmax weights sum to 1), where e
  // repeats each KV head's bias for the query heads of its group. So Qwen2 with a v bias must equal a Llama
  // with attention_bias whose o_proj bias is W_o e.
  std::mt19937 rng(9);
  Tensor bv = testing::random_tensor({64}, rng, 0.5f);
  weight("model.layers.0.self_attn.v_proj.bias") = bv;
  const std::vector<float> qwen = logits(prompt);
  EXPECT_GT(testing::rel_l2(qwen.data(), llama.data(), 512), 1e-4);

  config_["architectures"] = {"LlamaForCausalLM"};
  config_["attention_bias"] = true;
  const Tensor& wo = weight("model.layers.0.self_attn.o_proj.weight");  // [128, 128]
  for (int l = 0; l < 4; ++l) {
    Tensor bo = Tensor::zeros({128}, DType::f32);
    if (l == 0)
      for (int r = 0; r < 128; ++r)
        for (int c = 0; c < 128; ++c) {
          const int head = c / 16, kv_head = head / 2;  // 8 query heads share 4 KV heads of 16 dims
          bo.data<float>()[r] += wo.data<float>()[r * 128 + c] * bv.data<float>()[kv_head * 16 + c % 16];
        }
    weights_.emplace_back("model.layers." + std::to_string(l) + ".self_attn.o_proj.bias", bo);
  }
  weight("model.layers.0.self_attn.v_proj.bias") = Tensor::zeros({64}, DType::f32);
  const std::vector<float> shifted = logits(prompt);
  EXPECT_LT(testing::rel_l2(shifted.data(), qwen.data(), 512), 1e-5);
}

TEST_F(Loading, TiedEmbeddingsUseTheEmbeddingAsLmHead) {
  config_["tie_word_embeddings"] = true;
  weight("lm_head.weight") = weight("model.embed_tokens.weight").clone();
  const std::vector<float> with_copy = logits({1, 2, 3});
  std::erase_if(weights_, [](const auto& w) { return w.first == "lm_head.weight"; });
  const std::vector<float> tied = logits({1, 2, 3});
  EXPECT_TRUE(testing::all_close(tied.data(), with_copy.data(), 512, 0, 0));
}

TEST_F(Loading, F16CheckpointMatchesF32WithinHalfPrecision) {
  const std::vector<float> f32 = logits({1, 7, 9, 11, 13});
  for (auto& [name, t] : weights_) {
    Tensor h = Tensor::empty(t.shape(), DType::f16);
    for (int64_t i = 0; i < t.numel(); ++i)
      static_cast<uint16_t*>(h.raw())[i] = kernels::cpu::f32_to_f16(t.data<float>()[i]);
    t = h;
  }
  const std::vector<float> f16 = logits({1, 7, 9, 11, 13});
  // f16 keeps 11 significant bits (relative rounding 2^-12 = 2.4e-4 per weight): logits move by ~1e-3.
  const double err = testing::rel_l2(f16.data(), f32.data(), 512);
  EXPECT_LT(err, 5e-3);
  EXPECT_GT(err, 0.0);
}

// The window masks attention (tests/models/mistral_window_test.cc) instead of capping the context; Qwen2-style
// configs name a window they do not use (use_sliding_window false).
TEST_F(Loading, MistralSlidingWindowMasksInsteadOfCappingPositions) {
  config_["architectures"] = {"MistralForCausalLM"};
  config_["sliding_window"] = 128;
  write();
  const auto mistral = LlamaModel::load(dir_.string());
  EXPECT_EQ(mistral->config().sliding_window, 128);
  EXPECT_EQ(mistral->lm_shape().max_positions, config_["max_position_embeddings"].get<int64_t>());
  config_["use_sliding_window"] = false;
  write();
  EXPECT_EQ(LlamaModel::load(dir_.string())->config().sliding_window, 0);
}

}  // namespace
}  // namespace lattice
