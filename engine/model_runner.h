// Runs a model's part of each step on one rank: builds the step's metadata, and owns the buffers the pieces
// write into (hidden states, logits), sized once for the largest step. Shared by the single-rank executor
// (engine/scheduler/executor.h) and the pipeline stage runner (parallel/stage_runner.h), so both run steps the
// same way on either backend.
//
// On a GPU it also owns the decode CUDA graphs: capture_decode_graphs() records one graph of the whole forward
// (embedding, layers, head) per decode bucket (engine/decode_buckets.h) after an eager warm-up of each batch size
// (which plans every GEMM shape in GemmLt's cache, so a capture makes no heuristic query). run() then replays the
// bucket's graph for a pure-decode step: the metadata, padded to the bucket, goes to the same device addresses
// with the same one copy, and the logits land in the same buffer. Prefill and mixed steps run eagerly.
//
// Async scheduling: a step planned before the previous step's tokens reached the host runs with a DeviceTokenFeed,
// and a kernel writes those tokens (still on the device, where the sampler left them) into the uploaded ids before
// the embedding (or the graph) reads them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "engine/causal_lm.h"
#include "engine/decode_buckets.h"
#include "engine/step_metadata.h"

namespace lattice {

class CudaGraph;

struct RunnerLimits {
  int64_t max_tokens_per_step = 512;  // new tokens per step (prefill chunk + decode tokens)
  int64_t max_seqs = 256;             // sequences per step
};

// Token ids a step takes on the device from the previous step's sampled tokens; the batch holds placeholders.
struct DeviceTokenFeed {
  const int32_t* tokens = nullptr;  // i32 on the runner's GPU: the previous step's sampled tokens
  std::vector<FedToken> rows;       // which token rows take which of them
};

// What capture_decode_graphs() did.
struct GraphCapture {
  int64_t graphs = 0;         // one per (batch bucket, context bucket)
  double seconds = 0;         // warm-up and capture
  int64_t device_bytes = 0;   // device memory the graphs took (cudaMemGetInfo before and after; >= 0)
};

class ModelRunner {
 public:
  // `exec` must be the context the model's weights and the cache live on.
  ModelRunner(CausalLM& model, KvCache& cache, const ops::ExecContext& exec, const RunnerLimits& limits);
  ~ModelRunner();

  // Starts a step: builds and uploads its metadata (padded to `pad` when given: StepMetadata::build). Returns the
  // hidden-state buffer for its tokens ([tokens, hidden], the model's activation dtype), which a later pipeline
  // stage fills from the previous one.
  // With `feed` (GPU only), the fed rows' ids are written on the device after the upload.
  Tensor& begin(const StepBatch& batch, const DecodeBucket* pad = nullptr, const DeviceTokenFeed* feed = nullptr);
  void embed();       // first stage: hidden = embeddings
  void run_layers();  // every stage: the model's layers over hidden
  // Last stage: the logits of the rows the batch asks for, on this rank's device; nullopt on TP ranks other
  // than 0, which take part in the head but receive no logits. Padded rows' logits follow the batch's rows.
  std::optional<StepOutput> head();
  // One whole step on a rank that holds every layer (its TP shard of them): a captured graph's replay for a
  // pure-decode step whose bucket has one, else begin, embed, run_layers and head. nullopt as head().
  std::optional<StepOutput> run(const StepBatch& batch, const DeviceTokenFeed* feed = nullptr);
  // run() on a model that holds every layer on this rank (no TP).
  StepOutput forward(const StepBatch& batch, const DeviceTokenFeed* feed = nullptr);

  // GPU only: warms up and captures a graph for every decode bucket (the work and the memory it takes are
  // reported through the return value; `progress(done, total)` after each graph). Every TP rank must call it at
  // the same point (the warm-up runs the collectives). Throws lattice::Error saying why when a capture fails
  // (something in the forward is not capture-safe); the runner then has no graphs and runs every step eagerly.
  GraphCapture capture_decode_graphs(const std::function<void(int64_t done, int64_t total)>& progress = {});
  // GPU only: the device memory the decode graphs take, measured before the real KV cache exists (so that its
  // sizing can leave that much free): a runner of `limits` over a one-block provisional cache (every warm-up and
  // captured row is padding, which reads block 0 and writes nothing) captures every bucket's graph as
  // capture_decode_graphs does, and everything it made is freed on return. The same collectives as
  // capture_decode_graphs (every TP rank must call it at the same point); throws as it does.
  static GraphCapture profile_decode_graphs(CausalLM& model, KvCacheShape kv, DType dtype, const ops::ExecContext& exec,
                                            const RunnerLimits& limits);
  // Forgets the graphs (e.g. when another TP rank could not capture): every step runs eagerly.
  void drop_decode_graphs();
  bool has_decode_graphs() const { return !graphs_.empty(); }
  const DecodeBuckets& decode_buckets() const { return buckets_; }
  // Steps run() replayed from a graph and steps it ran eagerly, since construction.
  int64_t graph_steps() const { return graph_steps_; }
  int64_t eager_steps() const { return eager_steps_; }
  // Host seconds run() spent, since construction, building and uploading metadata (begin) and enqueueing the step
  // (a graph launch, or the eager ops; on the CPU that is the computation itself). What a step costs beyond these
  // is the device's work and the wait for it (the sampler's), which a host off the critical path would overlap.
  double host_build_seconds() const { return build_s_; }
  double host_enqueue_seconds() const { return enqueue_s_; }

  // Device bytes the runner's own buffers take (hidden states and logits), for sizing the KV cache before it.
  static size_t buffer_bytes(const LmShape& shape, DType activation, const RunnerLimits& limits);

  const ops::ExecContext& exec() const { return exec_; }
  // Times the model's ops into `profiler` (null: stop timing); it must outlive the steps it times.
  void set_profiler(ops::OpProfiler* profiler) { exec_.profiler = profiler; }
  // The exec context when it is a GPU (for the sampler), else null; valid as long as the runner.
  const ops::ExecContext* gpu() const { return exec_.device.is_cpu() ? nullptr : &exec_; }
  CausalLM& model() { return model_; }

 private:
  StepContext step() const { return {exec_, meta_}; }

  CausalLM& model_;
  KvCache& cache_;
  ops::ExecContext exec_;
  StepMetadata meta_;
  DecodeBuckets buckets_;
  Tensor hidden_buffer_, logits_buffer_;  // [max tokens, hidden], f32 [max tokens, vocab]
  Tensor hidden_;                          // this step's rows of hidden_buffer_
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<CudaGraph>> graphs_;  // by (seqs, context) bucket
  bool graphs_have_logits_ = false;  // whether the captured head filled logits on this rank (TP rank 0)
  int64_t graph_steps_ = 0, eager_steps_ = 0;
  double build_s_ = 0, enqueue_s_ = 0;
};

}  // namespace lattice
