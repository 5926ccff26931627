// Where a step's time goes, for `lattice bench --profile`: time per op kind, split by step phase (steps that
// carry prompt tokens vs pure decode steps), beside each phase's wall time per step.
//
// The model wraps each op (or group of ops of one kind) in an OpScope; the executor calls step_done() once per
// step. On the CPU a scope is the wall time around the op (the ops run to completion). On a GPU it is a pair of
// CUDA events on the compute stream, read when the step is done, so it is the device time of the op's kernels,
// not the host's enqueue time; CUDA graphs must be off (a graph replays without the events). Nested scopes count
// only the outermost one, so no time is counted twice. "host" is the phase's wall time per step minus every op's:
// the scheduler, the metadata build and upload, and (on a GPU) time the device sat idle between ops.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include "engine/ops/exec_context.h"

struct CUevent_st;  // cudaEvent_t, without the CUDA headers

namespace lattice::ops {

enum class OpKind : int {
  embedding,
  qkv_proj,      // the fused q/k/v projection (GEMM)
  o_proj,        // attention output projection (GEMM)
  gate_up_proj,  // the fused gate/up projection (GEMM; MoE: the experts' gate/up)
  down_proj,     // (GEMM; MoE: the experts' down projection)
  lm_head,       // final norm + logits (GEMM)
  moe_routing,   // router GEMM, top-k, grouping and combine
  norm,          // RMSNorm, residual add + RMSNorm, q/k head norms
  rope_kv,       // RoPE and the K/V cache write
  attention,
  activation,    // SiLU-mul
  communication, // TP all-reduce
  sampling,      // penalties, logit checks, sampling and the copy of tokens to the host
  count
};
constexpr int kOpKinds = static_cast<int>(OpKind::count);
const char* op_kind_name(OpKind kind);

enum class StepPhase : int { prefill, decode };  // prefill: the step has a chunk of more than one new token

struct PhaseProfile {
  int64_t steps = 0;
  double wall_s = 0;                        // wall time of the phase's steps, from the previous step's end
  std::array<double, kOpKinds> seconds{};   // per op kind
  std::array<double, kOpKinds> flops{};     // counted where known (GEMMs, attention), else 0
  double op_seconds() const;
  PhaseProfile& operator+=(const PhaseProfile& other);
};

class OpProfiler {
 public:
  // stream == nullptr: wall time on the host; otherwise CUDA events recorded on `stream`.
  explicit OpProfiler(CUstream_st* stream = nullptr);
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Starts timing a run: clears the totals; the first step's wall time counts from here.
  void start();
  // Ends the current step: resolves its scopes (waiting for the GPU's events) and adds them to `phase`.
  void step_done(StepPhase phase);
  const PhaseProfile& phase(StepPhase p) const { return phases_[static_cast<int>(p)]; }

 private:
  friend class OpScope;
  using Clock = std::chrono::steady_clock;
  struct Open {
    OpKind kind;
    double flops;
    Clock::time_point begin;  // cpu
    int events = -1;          // gpu: index of the begin event in events_ (end = +1)
  };
  int open(OpKind kind, double flops);
  void close(int id);
  CUevent_st* event(int index);

  CUstream_st* stream_;
  int depth_ = 0;
  std::vector<Open> open_;   // this step's outermost scopes
  std::vector<CUevent_st*> events_;  // gpu: a pool reused every step
  int events_used_ = 0;
  std::array<double, kOpKinds> pending_s_{}, pending_flops_{};
  std::array<PhaseProfile, 2> phases_{};
  Clock::time_point last_step_end_ = Clock::now();
};

// Times the enclosing block as `kind` when ctx carries a profiler; otherwise does nothing.
class OpScope {
 public:
  OpScope(const ExecContext& ctx, OpKind kind, double flops = 0)
      : profiler_(ctx.profiler), id_(profiler_ ? profiler_->open(kind, flops) : -1) {}
  ~OpScope() {
    if (profiler_) profiler_->close(id_);
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  OpProfiler* profiler_;
  int id_;
};

// 2 m n k: the FLOPs of x [m, k] @ weight [n, k]^T.
double linear_flops(const Tensor& x, const Tensor& weight);

}  // namespace lattice::ops
