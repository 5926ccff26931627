// Collective and point-to-point operations on tensors within one group of ranks (a TP group or a PP link).
// Implementations: single-rank (no-ops), MPI (CPU tensors), MPI with host staging (GPU tensors copied through
// pinned host memory on the compute stream) and NCCL (GPU tensors, one GPU per rank). Every rank of the group
// must call collectives in the same order.
//
// On a GPU the operations are ordered on the rank's compute stream (DeviceBinding::stream): they read tensors
// that earlier work on that stream produced, and later work on it sees their results. NCCL only enqueues, so a
// call may return before the data has moved, and its calls can be captured in a CUDA graph; synchronize() is
// the per-step wait (never inside a capture) that also turns a failed or stalled peer into a lattice::Error.
// The MPI paths, host staging included, wait for the stream and complete the transfer before they return, so
// they cannot be captured.
#pragma once

#include <memory>
#include <string>

#include "engine/core/tensor.h"

struct CUstream_st;  // cudaStream_t, without the CUDA headers

namespace lattice::parallel {

// The GPU a rank's tensors live on and the stream that produces and consumes them (the engine's compute
// stream, engine/cuda/device_context.h's DeviceContext::stream()).
struct DeviceBinding {
  int index = 0;                  // cuda:index
  CUstream_st* stream = nullptr;  // null: the legacy default stream
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // within the group
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "single", "mpi", "mpi with host staging", "nccl"

  // In place; f32, bf16 or f16. Every rank of the group gets the same bits. MPI sums half types in f32 and
  // rounds once; NCCL adds in f32 but stores partial sums in the dtype between hops (size - 1 roundings at most).
  virtual void all_reduce_sum(Tensor& t) = 0;
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;  // out holds size() x in, rank-major
  // out [size() x in], rank-major, on `root` only; elsewhere `out` is not touched (and may be undefined).
  // For results that only one rank consumes (the sampler's logits), where all_gather would move size() times
  // the data.
  virtual void gather(const Tensor& in, Tensor& out, int root) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void send(const Tensor& t, int peer) = 0;
  virtual void recv(Tensor& t, int peer) = 0;  // t has the expected shape and dtype
  virtual void barrier() = 0;                  // returns once every rank has reached it
  // Waits until everything this communicator enqueued has completed: the once-per-step watchdog. NCCL polls
  // the stream and the communicator's asynchronous error state, and after its timeout aborts the
  // communicator and throws naming the rank; host staging waits for its last upload; MPI and single: no-op.
  virtual void synchronize() = 0;
  // Seconds this rank spent communicating through this communicator. MPI: host wall time inside the calls,
  // waiting for the peer included; host staging the same, less the wait for the compute that produced the operand. NCCL: device time of its operations on the stream, from
  // CUDA events recorded around each call (the calls only enqueue, so host time would miss the transfer),
  // counted up to the last synchronize(); calls captured into a CUDA graph are not counted.
  virtual double seconds() const = 0;
};

// The group of one rank: every collective is the identity.
std::unique_ptr<Communicator> make_single_rank_communicator();

}  // namespace lattice::parallel
