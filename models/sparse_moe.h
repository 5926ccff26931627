// The sparse mixture-of-experts MLP of Mixtral and Qwen3-MoE (the one block where they differ from the Llama
// family; models/llama.cc runs it in place of the dense MLP): router logits, softmax, top-k with renormalised
// weights (engine/ops/moe.h), then each active expert's SwiGLU over the rows routed to it as one GEMM each, and
// the weighted sum back per token.
//
// Parallelism, within the TP group: without expert parallelism every rank holds a 1/tp column slice of each
// expert's gate/up and a row slice of its down projection (like the dense MLP); with it, rank r holds experts
// [r * E / tp, (r + 1) * E / tp) whole. Either way a rank's output is a partial sum over the same replicated
// hidden states, and the layer's all-reduce completes it (docs/parallelism.md).
#pragma once

#include <vector>

#include "engine/ops/exec_context.h"
#include "models/model_config.h"
#include "models/weight_loader.h"

namespace lattice {

// The experts [begin, end) a rank holds.
struct ExpertRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
  bool contains(int64_t e) const { return begin <= e && e < end; }
};

// All experts, or under expert parallelism TP rank r's contiguous share (num_experts must divide by tp).
ExpertRange owned_experts(const ModelConfig& config, TensorParallelRank tp, bool expert_parallel);

struct MoeLayer {
  Tensor router;                  // [num_experts, hidden], replicated
  std::vector<Tensor> w_gate_up;  // per held expert: [2 * moe_inter / tp', hidden]: gate, then up (tp' = 1 under EP)
  std::vector<Tensor> w_down;     // per held expert: [hidden, moe_inter / tp']
};

// Layer `layer`'s router and the experts of `experts`, this rank's slices.
MoeLayer load_moe_layer(WeightLoader& w, const ModelConfig& config, int64_t layer, ExpertRange experts, DType dtype,
                        Device device);

class SparseMoe {
 public:
  SparseMoe() = default;
  SparseMoe(const ModelConfig& config, ExpertRange experts)
      : num_experts_(config.num_experts),
        top_k_(config.num_experts_per_tok),
        hidden_(config.hidden_size),
        renormalize_(config.norm_topk_prob),
        experts_(experts) {}
  // Buffers for steps of up to max_tokens tokens; `expert_inter` is a held expert's (sliced) intermediate size.
  void reserve(int64_t max_tokens, int64_t expert_inter, DType dtype, Device device);
  // out [tokens, hidden] = this rank's part of the MoE MLP of x [tokens, hidden] (before the all-reduce).
  void forward(const ops::ExecContext& ctx, const MoeLayer& layer, const Tensor& x, Tensor& out);

 private:
  int64_t num_experts_ = 0, top_k_ = 0, hidden_ = 0;
  bool renormalize_ = false;
  ExpertRange experts_;
  int64_t capacity_ = 0;
  Tensor logits_;      // f32 [tokens, num_experts]
  Tensor ids_;         // i32 [tokens, top_k]
  Tensor weights_;     // f32 [tokens, top_k]
  Tensor positions_;   // i32 [tokens, top_k]: slot of each assignment, -1 on another rank
  Tensor rows_;        // i32 [tokens * top_k]: token of each slot, grouped by expert
  Tensor offsets_;     // i64 [held experts + 1]
  Tensor xs_;          // [tokens * top_k, hidden]: x gathered in slot order
  Tensor gate_up_;     // [tokens * top_k, 2 * expert_inter]
  Tensor act_;         // [tokens * top_k, expert_inter]
  Tensor expert_out_;  // [tokens * top_k, hidden]
};

}  // namespace lattice
