// A float64 forward pass of a Llama-family checkpoint written straight from the Hugging Face modeling code
// (LlamaForCausalLM / Qwen3ForCausalLM), independent of the engine's ops: the whole sequence recomputed with
// causal GQA attention, rotate_half RoPE and, for Qwen3, RMSNorm of every q and k head (q_norm / k_norm) before
// RoPE, and Mistral's sliding window (each position attends to the last sliding_window positions), and the sparse
// MoE MLP of MixtralSparseMoeBlock / Qwen3MoeSparseMoeBlock (softmax over all experts, top-k with ties to the
// lower index as torch.topk, weights renormalised for Mixtral and for Qwen3-MoE's norm_topk_prob, the weighted
// sum of the chosen experts' SwiGLU). Reads f32 weights through Checkpoint; no biases, no rope scaling (what the
// random checkpoints write).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "engine/weights/safetensors.h"
#include "models/model_config.h"
#include "tests/models/float64_moe_router.h"

namespace lattice::testing {

class Float64Reference {
 public:
  explicit Float64Reference(const std::string& dir)
      : config_(ModelConfig::from_file(dir + "/config.json")), ckpt_(Checkpoint::open(dir)) {}

  // Logits [tokens.size()][vocab] at every position of `tokens`.
  std::vector<std::vector<double>> logits(const std::vector<int32_t>& tokens) const {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(tokens.size()), h = c.hidden_size, d = c.head_dim;
    const int64_t group = c.num_heads / c.num_kv_heads;
    Mat x(n, std::vector<double>(h));
    const auto embed = weight("model.embed_tokens.weight");
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < h; ++i) x[t][i] = embed[tokens[t] * h + i];
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const Mat xn = norm_rows(x, weight(p + "input_layernorm.weight"), h);
      Mat q = matmul(xn, p + "self_attn.q_proj.weight"), k = matmul(xn, p + "self_attn.k_proj.weight");
      const Mat v = matmul(xn, p + "self_attn.v_proj.weight");
      if (c.qk_norm) {
        q = norm_rows(q, weight(p + "self_attn.q_norm.weight"), d);
        k = norm_rows(k, weight(p + "self_attn.k_norm.weight"), d);
      }
      rope(q);
      rope(k);
      Mat attn(n, std::vector<double>(c.num_heads * d, 0.0));
      for (int64_t t = 0; t < n; ++t)
        for (int64_t hq = 0; hq < c.num_heads; ++hq) {
          const int64_t hk = hq / group;
          std::vector<double> score(t + 1);
          double top = -INFINITY, sum = 0;
          const int64_t first = c.sliding_window > 0 ? std::max<int64_t>(0, t - c.sliding_window + 1) : 0;
          for (int64_t s = 0; s <= t; ++s) {
            if (s < first) {
              score[s] = -INFINITY;
              continue;
            }
            double dot = 0;
            for (int64_t i = 0; i < d; ++i) dot += q[t][hq * d + i] * k[s][hk * d + i];
            score[s] = dot / std::sqrt(static_cast<double>(d));
            top = std::max(top, score[s]);
          }
          for (double& e : score) sum += (e = std::exp(e - top));
          for (int64_t s = 0; s <= t; ++s)
            for (int64_t i = 0; i < d; ++i) attn[t][hq * d + i] += score[s] / sum * v[s][hk * d + i];
        }
      add(x, matmul(attn, p + "self_attn.o_proj.weight"));
      const Mat xn2 = norm_rows(x, weight(p + "post_attention_layernorm.weight"), h);
      add(x, c.is_moe() ? sparse_moe(xn2, p) : swiglu(xn2, p + "mlp.", "gate_proj", "up_proj", "down_proj"));
    }
    return matmul(norm_rows(x, weight("model.norm.weight"), h),
                  c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  }

  // Greedy continuation of `prompt` by `steps` tokens (argmax of the float64 logits, recomputed each step).
  std::vector<int32_t> greedy(std::vector<int32_t> tokens, int steps) const {
    std::vector<int32_t> out;
    for (int s = 0; s < steps; ++s) {
      const std::vector<double> last = logits(tokens).back();
      out.push_back(static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
      tokens.push_back(out.back());
    }
    return out;
  }

  const ModelConfig& config() const { return config_; }

 private:
  using Mat = std::vector<std::vector<double>>;

  std::vector<double> weight(const std::string& name) const {
    const Tensor t = ckpt_.tensor(name);
    return std::vector<double>(t.data<float>(), t.data<float>() + t.numel());
  }

  // x [n, in] @ W^T for W [out, in] from the checkpoint.
  Mat matmul(const Mat& x, const std::string& name) const {
    const Tensor w = ckpt_.tensor(name);
    const int64_t out = w.dim(0), in = w.dim(1);
    Mat y(x.size(), std::vector<double>(out, 0.0));
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t o = 0; o < out; ++o) {
        double acc = 0;
        for (int64_t i = 0; i < in; ++i) acc += x[t][i] * w.data<float>()[o * in + i];
        y[t][o] = acc;
      }
    return y;
  }

  // down(silu(gate(x)) * up(x)) with the projections `prefix + name + ".weight"`.
  Mat swiglu(const Mat& x, const std::string& prefix, const char* gate_name, const char* up_name,
             const char* down_name) const {
    const Mat gate = matmul(x, prefix + gate_name + ".weight"), up = matmul(x, prefix + up_name + ".weight");
    Mat act = gate;
    for (size_t t = 0; t < x.size(); ++t)
      for (size_t i = 0; i < act[t].size(); ++i) act[t][i] = gate[t][i] / (1 + std::exp(-gate[t][i])) * up[t][i];
    return matmul(act, prefix + down_name + ".weight");
  }

  // The sparse MoE block of layer prefix `p` over rows x: each expert computed on the rows that chose it.
  Mat sparse_moe(const Mat& x, const std::string& p) const {
    const ModelConfig& c = config_;
    const bool mixtral = c.architecture == "MixtralForCausalLM";
    const std::string block = p + (mixtral ? "block_sparse_moe." : "mlp.");
    const Mat logits = matmul(x, block + "gate.weight");
    Mat out(x.size(), std::vector<double>(x.front().size(), 0.0));
    std::vector<std::vector<std::pair<size_t, double>>> routed(static_cast<size_t>(c.num_experts));  // (row, weight)
    for (size_t t = 0; t < x.size(); ++t)
      for (const auto& [e, w] : moe_choices(logits[t], c.num_experts_per_tok, c.norm_topk_prob)) routed[e].emplace_back(t, w);
    for (int64_t e = 0; e < c.num_experts; ++e) {
      if (routed[e].empty()) continue;
      Mat rows;
      for (const auto& [t, w] : routed[e]) rows.push_back(x[t]);
      const std::string ep = block + "experts." + std::to_string(e) + ".";
      const Mat y = mixtral ? swiglu(rows, ep, "w1", "w3", "w2") : swiglu(rows, ep, "gate_proj", "up_proj", "down_proj");
      for (size_t r = 0; r < rows.size(); ++r)
        for (size_t i = 0; i < y[r].size(); ++i) out[routed[e][r].first][i] += routed[e][r].second * y[r][i];
    }
    return out;
  }

  // RMSNorm of every `width`-long group of each row (the hidden row, or each head) times w [width].
  Mat norm_rows(const Mat& x, const std::vector<double>& w, int64_t width) const {
    Mat y = x;
    for (auto& row : y)
      for (size_t at = 0; at < row.size(); at += static_cast<size_t>(width)) {
        double ss = 0;
        for (int64_t i = 0; i < width; ++i) ss += row[at + i] * row[at + i];
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(width) + config_.rms_norm_eps);
        for (int64_t i = 0; i < width; ++i) row[at + i] *= inv * w[i];
      }
    return y;
  }

  // rotate_half RoPE of every head of each row at the row's position.
  void rope(Mat& x) const {
    const int64_t d = config_.head_dim, half = d / 2;
    for (size_t t = 0; t < x.size(); ++t)
      for (size_t at = 0; at < x[t].size(); at += static_cast<size_t>(d))
        for (int64_t i = 0; i < half; ++i) {
          const double freq = std::pow(config_.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
          const double a = static_cast<double>(t) * freq, x0 = x[t][at + i], x1 = x[t][at + i + half];
          x[t][at + i] = x0 * std::cos(a) - x1 * std::sin(a);
          x[t][at + i + half] = x1 * std::cos(a) + x0 * std::sin(a);
        }
  }

  static void add(Mat& x, const Mat& y) {
    for (size_t t = 0; t < x.size(); ++t)
      for (size_t i = 0; i < x[t].size(); ++i) x[t][i] += y[t][i];
  }

  ModelConfig config_;
  Checkpoint ckpt_;
};

}  // namespace lattice::testing
