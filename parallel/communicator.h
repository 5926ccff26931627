// Collective and point-to-point operations on tensors within one group of ranks (a TP group or a PP link).
// Implementations: single-rank (no-ops), MPI (CPU tensors; GPU tensors staged through host memory) and NCCL
// (GPU tensors). Every rank of the group must call collectives in the same order.
#pragma once

#include <memory>
#include <string>

#include "engine/core/tensor.h"

namespace lattice::parallel {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // within the group
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "single", "mpi", "nccl"

  virtual void all_reduce_sum(Tensor& t) = 0;                 // f32, in place
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;  // out holds size() x in, rank-major
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void send(const Tensor& t, int peer) = 0;
  virtual void recv(Tensor& t, int peer) = 0;  // t has the expected shape and dtype
  virtual void barrier() = 0;
  // Seconds this rank spent inside the communicator's calls (waiting included).
  virtual double seconds() const = 0;
};

// The group of one rank: every collective is the identity.
std::unique_ptr<Communicator> make_single_rank_communicator();

}  // namespace lattice::parallel
