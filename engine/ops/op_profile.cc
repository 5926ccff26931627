#include "engine/ops/op_profile.h"

#include "engine/core/error.h"

#ifdef LATTICE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#endif

namespace lattice::ops {

const char* op_kind_name(OpKind kind) {
  static constexpr const char* kNames[kOpKinds] = {
      "embedding", "qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head",       "moe_routing",
      "norm",      "rope_kv",  "attention", "activation", "communication", "sampling"};
  return kNames[static_cast<int>(kind)];
}

double PhaseProfile::op_seconds() const {
  double s = 0;
  for (const double v : seconds) s += v;
  return s;
}

PhaseProfile& PhaseProfile::operator+=(const PhaseProfile& other) {
  steps += other.steps;
  wall_s += other.wall_s;
  for (int k = 0; k < kOpKinds; ++k) {
    seconds[k] += other.seconds[k];
    flops[k] += other.flops[k];
  }
  return *this;
}

double linear_flops(const Tensor& x, const Tensor& weight) {
  return 2.0 * static_cast<double>(x.numel() / x.dim(x.rank() - 1)) * static_cast<double>(weight.dim(0)) *
         static_cast<double>(weight.dim(1));
}

OpProfiler::OpProfiler(CUstream_st* stream) : stream_(stream) {
#ifndef LATTICE_HAVE_CUDA
  LATTICE_CHECK(stream == nullptr, "OpProfiler: a CUDA stream in a build without the CUDA backend");
#endif
}

OpProfiler::~OpProfiler() {
#ifdef LATTICE_HAVE_CUDA
  for (CUevent_st* e : events_) cudaEventDestroy(e);
#endif
}

void OpProfiler::start() {
  phases_ = {};
  pending_s_ = {};
  pending_flops_ = {};
  open_.clear();
  events_used_ = 0;
  last_step_end_ = Clock::now();
}

#ifdef LATTICE_HAVE_CUDA
CUevent_st* OpProfiler::event(int index) {
  while (static_cast<int>(events_.size()) <= index) {
    cudaEvent_t e = nullptr;
    CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return events_[static_cast<size_t>(index)];
}
#endif

int OpProfiler::open(OpKind kind, double flops) {
  if (depth_++ > 0) return -1;  // inside another scope: counted there
  Open o{kind, flops, Clock::now(), -1};
#ifdef LATTICE_HAVE_CUDA
  if (stream_) {
    o.events = events_used_;
    events_used_ += 2;
    CUDA_CHECK(cudaEventRecord(event(o.events), stream_));
  }
#endif
  open_.push_back(o);
  return static_cast<int>(open_.size()) - 1;
}

void OpProfiler::close(int id) {
  --depth_;
  if (id < 0) return;
  Open& o = open_[static_cast<size_t>(id)];
  pending_flops_[static_cast<int>(o.kind)] += o.flops;
#ifdef LATTICE_HAVE_CUDA
  if (stream_) {
    CUDA_CHECK(cudaEventRecord(event(o.events + 1), stream_));
    return;  // read in step_done, once the step has run
  }
#endif
  pending_s_[static_cast<int>(o.kind)] += std::chrono::duration<double>(Clock::now() - o.begin).count();
}

void OpProfiler::step_done(StepPhase phase) {
  LATTICE_CHECK(depth_ == 0, "OpProfiler: a step ended inside an op scope");
#ifdef LATTICE_HAVE_CUDA
  if (stream_ && events_used_ > 0) {
    CUDA_CHECK(cudaEventSynchronize(event(events_used_ - 1)));
    for (const Open& o : open_) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, event(o.events), event(o.events + 1)));
      pending_s_[static_cast<int>(o.kind)] += 1e-3 * ms;
    }
  }
#endif
  const Clock::time_point now = Clock::now();
  PhaseProfile& p = phases_[static_cast<int>(phase)];
  ++p.steps;
  p.wall_s += std::chrono::duration<double>(now - last_step_end_).count();
  for (int k = 0; k < kOpKinds; ++k) {
    p.seconds[k] += pending_s_[k];
    p.flops[k] += pending_flops_[k];
  }
  pending_s_ = {};
  pending_flops_ = {};
  open_.clear();
  events_used_ = 0;
  last_step_end_ = now;
}

}  // namespace lattice::ops
