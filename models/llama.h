// The Llama-family decoder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) on the CPU backend:
// pre-norm blocks of GQA attention over the paged KV cache and a SiLU-gated MLP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/causal_lm.h"
#include "engine/ops/attention.h"
#include "models/model_config.h"
#include "models/weight_loader.h"

namespace lattice {

struct LlamaLayer {
  Tensor input_norm;          // f32 [hidden]
  Tensor wq, wk, wv;          // f32 [heads * head_dim, hidden], [kv_heads * head_dim, hidden] x2
  Tensor bq, bk, bv;          // f32 [out] when the config has q/k/v bias, else undefined
  Tensor wo;                  // f32 [hidden, heads * head_dim]
  Tensor bo;                  // f32 [hidden] or undefined
  Tensor post_norm;           // f32 [hidden]
  Tensor w_gate, w_up;        // f32 [intermediate, hidden]
  Tensor w_down;              // f32 [hidden, intermediate]
};

class LlamaModel : public CausalLM {
 public:
  // Reads DIR/config.json and DIR's safetensors checkpoint.
  static std::unique_ptr<LlamaModel> load(const std::string& dir, WeightLoader::Progress progress = {});
  LlamaModel(ModelConfig config, const Checkpoint& checkpoint, WeightLoader::Progress progress);

  const ModelConfig& config() const { return config_; }
  const LmShape& lm_shape() const override { return shape_; }
  StepOutput forward(const StepBatch& batch, KvCache& cache) override;

 private:
  void validate(const StepBatch& batch, const KvCache& cache) const;
  // hidden [tokens, hidden] += attention(layer l) and MLP(layer l).
  void run_layer(int64_t l, Tensor& hidden, const Tensor& positions, const ops::AttentionMetadata& meta,
                 KvCache& cache) const;

  ModelConfig config_;
  LmShape shape_;
  Tensor embed_;      // f32 [vocab, hidden]
  std::vector<LlamaLayer> layers_;
  Tensor final_norm_; // f32 [hidden]
  Tensor lm_head_;    // f32 [vocab, hidden]; shares embed_'s buffer when embeddings are tied
  Tensor inv_freq_;   // f32 [head_dim / 2]
};

}  // namespace lattice
