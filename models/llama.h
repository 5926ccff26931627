// The Llama-family decoder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, and with a
// sparse MoE MLP (models/sparse_moe.h) MixtralForCausalLM, Qwen3MoeForCausalLM) on either backend: pre-norm
// blocks of GQA attention over the paged KV cache and a SiLU-gated MLP. A model may be one tensor-parallel
// rank's shard (Megatron: column-parallel fused q/k/v and gate/up, row-parallel o_proj and down_proj each
// followed by an all-reduce, vocabulary-parallel embedding and lm_head) and/or one pipeline stage's layer range.
// Weights, activations and the KV cache share one dtype (f32 on the CPU; bf16, f16 or f32 on a GPU); logits
// are f32.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/causal_lm.h"
#include "models/model_config.h"
#include "models/sparse_moe.h"
#include "models/weight_loader.h"
#include "parallel/communicator.h"

namespace lattice {

// Which part of the model this rank holds.
struct ModelPartition {
  TensorParallelRank tp;
  int64_t layer_begin = 0;
  int64_t layer_end = -1;  // -1: through the last layer
  // A MoE model's experts split whole over the TP group's ranks instead of each expert split over them.
  bool expert_parallel = false;

  bool has_embedding() const { return layer_begin == 0; }
};

// Where the weights go and in which type.
struct LoadOptions {
  DType dtype = DType::f32;
  ops::ExecContext exec;       // its device receives the weights; its stream runs the steps
  bool dummy_weights = false;  // deterministic random weights from config.json alone (benchmarks)
};

struct LlamaLayer {
  Tensor input_norm;  // [hidden]
  Tensor wqkv;        // [(local heads + 2 * local kv heads) * head_dim, hidden]: q, k, v stacked
  Tensor bqkv;        // [(local heads + 2 * local kv heads) * head_dim] when the config has q/k/v bias
  Tensor q_norm;      // [head_dim] when the config has q/k norms (Qwen3), else undefined
  Tensor k_norm;      // [head_dim] likewise
  Tensor wo;          // [hidden, local heads * head_dim]
  Tensor bo;          // [hidden] on TP rank 0 when the config has an o_proj bias, else undefined
  Tensor post_norm;   // [hidden]
  Tensor w_gate_up;   // [2 * intermediate / tp, hidden]: gate, then up (dense models)
  Tensor w_down;      // [hidden, intermediate / tp] (dense models)
  MoeLayer moe;       // the router and this rank's experts (MoE models)
};

class LlamaModel : public CausalLM {
 public:
  // Reads DIR/config.json and (unless options.dummy_weights) DIR's safetensors checkpoint. `tp_comm` is this
  // rank's TP group (null when partition.tp.size == 1).
  static std::unique_ptr<LlamaModel> load(const std::string& dir, const ModelPartition& partition = {},
                                          parallel::Communicator* tp_comm = nullptr, const LoadOptions& options = {},
                                          WeightLoader::Progress progress = {});
  // `weights`: a checkpoint (CheckpointWeights) or generated values (DummyWeights).
  LlamaModel(ModelConfig config, const WeightSource& weights, const ModelPartition& partition,
             parallel::Communicator* tp_comm, const LoadOptions& options, WeightLoader::Progress progress);

  const ModelConfig& config() const { return config_; }
  const LmShape& lm_shape() const override { return shape_; }
  DType activation_dtype() const override { return dtype_; }
  Device device() const override { return exec_.device; }
  size_t weight_bytes_read() const { return bytes_read_; }
  void reserve(int64_t max_tokens) override;

  void embed(const StepContext& step, Tensor& hidden) override;
  void run_layers(const StepContext& step, Tensor& hidden, KvCache& cache) override;
  bool head(const StepContext& step, const Tensor& hidden, Tensor& logits) override;

 private:
  // hidden [tokens, hidden] += attention and MLP of layer `l` (a global index). The MLP's output is left in
  // `pending` and joins the residual in the next layer's fused add + norm (or at the end of the stage).
  void run_layer(const StepContext& step, int64_t l, Tensor& hidden, bool first, KvCache& cache);
  void all_reduce(const ops::ExecContext& ctx, Tensor& t) const;

  // Activation buffers for up to `capacity` tokens, allocated once (reserve) and used as row views.
  struct Buffers {
    int64_t capacity = 0;
    Tensor x, qkv, q, attn, pending, gate_up, act, selected, local_logits, gathered;
  };

  ModelConfig config_;
  ModelPartition part_;
  parallel::Communicator* tp_comm_;
  DType dtype_;
  ops::ExecContext exec_;
  LmShape shape_;
  int64_t heads_ = 0, kv_heads_ = 0;  // on this rank
  int64_t sliding_window_ = 0;        // passed to attention (0: none)
  Tensor embed_;                      // [ceil(vocab / tp), hidden] on the first stage
  std::vector<LlamaLayer> layers_;    // layers [layer_begin, layer_end)
  Tensor final_norm_;                 // [hidden] on the last stage
  Tensor lm_head_;                    // [ceil(vocab / tp), hidden] on the last stage
  Tensor inv_freq_;                   // f32 [head_dim / 2]
  ExpertRange experts_;               // the experts this rank holds (MoE models)
  SparseMoe moe_;                     // the MoE MLP's step (its buffers shared by every layer)
  Buffers buf_;
  size_t bytes_read_ = 0;
};

}  // namespace lattice
