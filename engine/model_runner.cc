#include "engine/model_runner.h"

namespace lattice {

namespace {

StepCapacity capacity(const LmShape& shape, const KvCache& cache, const RunnerLimits& limits) {
  LATTICE_CHECK(limits.max_tokens_per_step > 0 && limits.max_seqs > 0, "--max-tokens-per-step and --max-seqs must be > 0");
  const int64_t block = cache.shape().block_size;
  return {limits.max_tokens_per_step, limits.max_seqs, (shape.max_positions + block - 1) / block};
}

}  // namespace

ModelRunner::ModelRunner(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits)
    : model_(model), cache_(cache), exec_(exec), meta_(capacity(model.lm_shape(), cache, limits), exec) {
  LATTICE_CHECK(model.device() == exec.device, "the model's weights are on ", model.device().str(),
                ", the runner on ", exec.device.str());
  const LmShape& s = model.lm_shape();
  model_.reserve(limits.max_tokens_per_step);
  hidden_buffer_ = Tensor::empty({limits.max_tokens_per_step, s.hidden_size}, model.activation_dtype(), exec.device);
  logits_buffer_ = Tensor::empty({limits.max_tokens_per_step, s.vocab_size}, DType::f32, exec.device);
}

size_t ModelRunner::buffer_bytes(const LmShape& shape, DType activation, const RunnerLimits& limits) {
  const auto tokens = static_cast<size_t>(limits.max_tokens_per_step);
  return tokens * static_cast<size_t>(shape.hidden_size) * dtype_size(activation) +
         tokens * static_cast<size_t>(shape.vocab_size) * sizeof(float);
}

Tensor& ModelRunner::begin(const StepBatch& batch) {
  const LmShape& s = model_.lm_shape();
  meta_.build(batch, cache_.shape().block_size, cache_.num_blocks(), s.vocab_size, s.max_positions);
  hidden_ = hidden_buffer_.rows(0, meta_.num_tokens());
  return hidden_;
}

void ModelRunner::embed() { model_.embed(step(), hidden_); }

void ModelRunner::run_layers() { model_.run_layers(step(), hidden_, cache_); }

std::optional<StepOutput> ModelRunner::head() {
  Tensor logits = logits_buffer_.rows(0, meta_.num_logit_rows());
  if (!model_.head(step(), hidden_, logits)) return std::nullopt;
  return StepOutput{logits, meta_.row_begin()};
}

StepOutput ModelRunner::forward(const StepBatch& batch) {
  begin(batch);
  embed();
  run_layers();
  std::optional<StepOutput> out = head();
  LATTICE_CHECK(out.has_value(), "forward() needs the whole model on one rank");
  return *out;
}

}  // namespace lattice
