// The Llama-family decoder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) on the CPU backend:
// pre-norm blocks of GQA attention over the paged KV cache and a SiLU-gated MLP. A model may be one
// tensor-parallel rank's shard (Megatron: column-parallel q/k/v and gate/up, row-parallel o_proj and
// down_proj each followed by an all-reduce, vocabulary-parallel embedding and lm_head) and/or one pipeline
// stage's layer range.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/causal_lm.h"
#include "engine/ops/attention.h"
#include "models/model_config.h"
#include "models/weight_loader.h"
#include "parallel/communicator.h"

namespace lattice {

// Which part of the model this rank holds.
struct ModelPartition {
  TensorParallelRank tp;
  int64_t layer_begin = 0;
  int64_t layer_end = -1;  // -1: through the last layer

  bool has_embedding() const { return layer_begin == 0; }
};

struct LlamaLayer {
  Tensor input_norm;    // f32 [hidden]
  Tensor wq, wk, wv;    // f32 [local heads * head_dim, hidden], [local kv heads * head_dim, hidden] x2
  Tensor bq, bk, bv;    // f32 [out] when the config has q/k/v bias, else undefined
  Tensor wo;            // f32 [hidden, local heads * head_dim]
  Tensor bo;            // f32 [hidden] on TP rank 0 when the config has an o_proj bias, else undefined
  Tensor post_norm;     // f32 [hidden]
  Tensor w_gate, w_up;  // f32 [intermediate / tp, hidden]
  Tensor w_down;        // f32 [hidden, intermediate / tp]
};

class LlamaModel : public CausalLM {
 public:
  // Reads DIR/config.json and DIR's safetensors checkpoint. `tp_comm` is this rank's TP group (null when
  // partition.tp.size == 1).
  static std::unique_ptr<LlamaModel> load(const std::string& dir, const ModelPartition& partition = {},
                                          parallel::Communicator* tp_comm = nullptr,
                                          WeightLoader::Progress progress = {});
  LlamaModel(ModelConfig config, const Checkpoint& checkpoint, const ModelPartition& partition,
             parallel::Communicator* tp_comm, WeightLoader::Progress progress);

  const ModelConfig& config() const { return config_; }
  const LmShape& lm_shape() const override { return shape_; }
  size_t weight_bytes_read() const { return bytes_read_; }

  Tensor embed(const StepBatch& batch) override;
  void run_layers(Tensor& hidden, const StepBatch& batch, KvCache& cache) override;
  StepOutput head(const Tensor& hidden, const StepBatch& batch) override;

 private:
  void validate(const StepBatch& batch, const KvCache& cache) const;
  // hidden [tokens, hidden] += attention and MLP of layer `l` (a global index).
  void run_layer(int64_t l, Tensor& hidden, const Tensor& positions, const ops::AttentionMetadata& meta,
                 KvCache& cache) const;
  void all_reduce(Tensor& t) const;

  ModelConfig config_;
  ModelPartition part_;
  parallel::Communicator* tp_comm_;
  LmShape shape_;
  int64_t heads_ = 0, kv_heads_ = 0;  // on this rank
  Tensor embed_;                      // f32 [vocab / tp, hidden] on the first stage
  std::vector<LlamaLayer> layers_;    // layers [layer_begin, layer_end)
  Tensor final_norm_;                 // f32 [hidden] on the last stage
  Tensor lm_head_;                    // f32 [vocab / tp, hidden] on the last stage
  Tensor inv_freq_;                   // f32 [head_dim / 2]
  size_t bytes_read_ = 0;
};

}  // namespace lattice
