#include "engine/model_runner.h"

#include <chrono>

#ifdef LATTICE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda/cuda_graph.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/feed_tokens.cuh"
#endif

namespace lattice {

namespace {

StepCapacity capacity(const LmShape& shape, const KvCache& cache, const RunnerLimits& limits) {
  LATTICE_CHECK(limits.max_tokens_per_step > 0 && limits.max_seqs > 0, "--max-tokens-per-step and --max-seqs must be > 0");
  const int64_t block = cache.shape().block_size;
  return {limits.max_tokens_per_step, limits.max_seqs, (shape.max_positions + block - 1) / block};
}

}  // namespace

#ifndef LATTICE_HAVE_CUDA
class CudaGraph {};  // never made without the CUDA backend; complete so that graphs_ can be destroyed
#endif

ModelRunner::ModelRunner(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits)
    : model_(model),
      cache_(cache),
      exec_(exec),
      meta_(capacity(model.lm_shape(), cache, limits), exec),
      // A decode row is one token, so a step's rows are bounded by both limits.
      buckets_(std::min(limits.max_seqs, limits.max_tokens_per_step), model.lm_shape().max_positions) {
  LATTICE_CHECK(model.device() == exec.device, "the model's weights are on ", model.device().str(),
                ", the runner on ", exec.device.str());
  const LmShape& s = model.lm_shape();
  model_.reserve(limits.max_tokens_per_step);
  hidden_buffer_ = Tensor::empty({limits.max_tokens_per_step, s.hidden_size}, model.activation_dtype(), exec.device);
  logits_buffer_ = Tensor::empty({limits.max_tokens_per_step, s.vocab_size}, DType::f32, exec.device);
}

ModelRunner::~ModelRunner() = default;

size_t ModelRunner::buffer_bytes(const LmShape& shape, DType activation, const RunnerLimits& limits) {
  const auto tokens = static_cast<size_t>(limits.max_tokens_per_step);
  return tokens * static_cast<size_t>(shape.hidden_size) * dtype_size(activation) +
         tokens * static_cast<size_t>(shape.vocab_size) * sizeof(float);
}

Tensor& ModelRunner::begin(const StepBatch& batch, const DecodeBucket* pad, const DeviceTokenFeed* feed) {
  const LmShape& s = model_.lm_shape();
  meta_.build(batch, cache_.shape().block_size, cache_.num_blocks(), s.vocab_size, s.max_positions, pad,
              feed ? feed->rows : std::vector<FedToken>{});
  if (feed && !feed->rows.empty()) {
    LATTICE_CHECK(gpu() && feed->tokens, "tokens fed on the device need a GPU runner and the tokens' address");
#ifdef LATTICE_HAVE_CUDA
    // Enqueued after the metadata's upload, on the same stream: it overwrites the placeholders just copied.
    kernels::cuda::feed_tokens(static_cast<int32_t*>(meta_.ids().raw()), feed->tokens,
                               static_cast<const int32_t*>(meta_.fed().raw()), static_cast<int32_t>(meta_.num_fed()),
                               static_cast<int32_t>(s.vocab_size), exec_.stream);
#endif
  }
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

std::optional<StepOutput> ModelRunner::run(const StepBatch& batch, const DeviceTokenFeed* feed) {
  using Clock = std::chrono::steady_clock;
  const auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto t = Clock::now();
#ifdef LATTICE_HAVE_CUDA
  if (!graphs_.empty()) {
    if (const std::optional<DecodeBucket> bucket = buckets_.find(batch)) {
      const auto it = graphs_.find({bucket->seqs, bucket->context});
      if (it != graphs_.end()) {
        begin(batch, &*bucket, feed);
        build_s_ += since(t);
        t = Clock::now();
        it->second->launch(exec_.stream);
        enqueue_s_ += since(t);
        ++graph_steps_;
        if (!graphs_have_logits_) return std::nullopt;
        // The batch's rows come first; the padding rows' logits stay out of the output.
        return StepOutput{logits_buffer_.rows(0, static_cast<int64_t>(batch.seqs.size())), meta_.row_begin()};
      }
    }
  }
#endif
  ++eager_steps_;
  begin(batch, nullptr, feed);
  build_s_ += since(t);
  t = Clock::now();
  embed();
  run_layers();
  std::optional<StepOutput> out = head();
  enqueue_s_ += since(t);
  return out;
}

StepOutput ModelRunner::forward(const StepBatch& batch, const DeviceTokenFeed* feed) {
  std::optional<StepOutput> out = run(batch, feed);
  LATTICE_CHECK(out.has_value(), "forward() needs the whole model on one rank");
  return *out;
}

void ModelRunner::drop_decode_graphs() { graphs_.clear(); }

GraphCapture ModelRunner::profile_decode_graphs(CausalLM& model, KvCacheShape kv, DType dtype,
                                                const ops::ExecContext& exec, const RunnerLimits& limits) {
  KvCache provisional(kv, 1, dtype, exec.device);
  ModelRunner runner(model, provisional, exec, limits);
  return runner.capture_decode_graphs();
}

#ifdef LATTICE_HAVE_CUDA
GraphCapture ModelRunner::capture_decode_graphs(const std::function<void(int64_t done, int64_t total)>& progress) {
  LATTICE_CHECK(!exec_.device.is_cpu(), "CUDA graphs need a GPU; the runner is on ", exec_.device.str());
  graphs_.clear();
  const auto start = std::chrono::steady_clock::now();
  CUDA_CHECK(cudaStreamSynchronize(exec_.stream));
  size_t free_before = 0, free_after = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  const int64_t count = static_cast<int64_t>(buckets_.batch_sizes().size() * buckets_.context_sizes().size());
  const StepBatch nothing;  // every row padding: the warm-up and the captures write no K/V
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<CudaGraph>> made;
  bool has_logits = false;
  try {
    for (const int64_t seqs : buckets_.batch_sizes()) {
      // One eager step per batch size first: GemmLt plans each of its GEMM shapes (m = seqs) and the kernels'
      // modules load, so the captures below make no heuristic query and load nothing.
      const DecodeBucket warm{seqs, buckets_.context_sizes().front()};
      begin(nothing, &warm);
      embed();
      run_layers();
      head();
      CUDA_CHECK(cudaStreamSynchronize(exec_.stream));
      for (const int64_t context : buckets_.context_sizes()) {
        const DecodeBucket bucket{seqs, context};
        begin(nothing, &bucket);  // the upload stays outside the graph: a replay's own upload precedes it
        made[{seqs, context}] = std::make_unique<CudaGraph>(exec_.stream, [&] {
          embed();
          run_layers();
          has_logits = head().has_value();
        });
        if (progress) progress(static_cast<int64_t>(made.size()), count);
      }
    }
    CUDA_CHECK(cudaStreamSynchronize(exec_.stream));
  } catch (const Error& e) {
    cudaStreamSynchronize(exec_.stream);  // the warm-up's work, before its buffers are reused eagerly
    cudaGetLastError();
    LATTICE_THROW("decode CUDA graphs (", made.size(), " of ", count, " made): ", e.what());
  }
  CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  graphs_ = std::move(made);
  graphs_have_logits_ = has_logits;
  GraphCapture report;
  report.graphs = count;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.device_bytes = free_before > free_after ? static_cast<int64_t>(free_before - free_after) : 0;
  return report;
}
#else
GraphCapture ModelRunner::capture_decode_graphs(const std::function<void(int64_t, int64_t)>&) {
  LATTICE_THROW("CUDA graphs need the CUDA backend, which this build does not have");
}
#endif

}  // namespace lattice
