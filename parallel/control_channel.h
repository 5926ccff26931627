// The control plane between ranks: byte messages (serialised step plans and results). Always MPI, whatever
// carries the tensors.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace lattice::parallel {

class ControlChannel {
 public:
  virtual ~ControlChannel() = default;
  // Within this rank's TP group; `bytes` is read on root and replaced elsewhere.
  virtual void broadcast_tp(std::string& bytes, int root_tp_rank) = 0;
  virtual void send(const std::string& bytes, int world_rank, int tag) = 0;
  // Non-blocking send: returns at once; the channel keeps the bytes until delivery. The sampler rank posts
  // results this way so that it never waits on the coordinator while the coordinator waits on it.
  virtual void post(std::string bytes, int world_rank, int tag) = 0;
  virtual std::string recv(int world_rank, int tag) = 0;
  // Whether a message from `world_rank` with `tag` has arrived (recv would not wait); never blocks, and
  // moves this rank's posted sends along.
  virtual bool probe(int world_rank, int tag) = 0;
  // Non-blocking: a message with `tag` from `world_rank` (kAnyRank: from any rank, whose rank goes to
  // *source) that has already arrived, or nullopt.
  virtual std::optional<std::string> try_recv(int world_rank, int tag, int* source = nullptr) = 0;
  // recv(), handing every message with `side_tag` (from any rank) that arrives while it waits to `side`.
  virtual std::string recv_with(int world_rank, int tag, int side_tag,
                                const std::function<void(int source, const std::string& bytes)>& side) = 0;
  // The minimum of `value` over every rank of the job (collective).
  virtual int64_t world_min(int64_t value) = 0;
  // Seconds this rank spent inside the channel's calls.
  virtual double seconds() const = 0;
};

// Message tags on the world communicator.
// kProgressTag: a worker's "received / finished step N" for the coordinator (parallel/step_progress.h).
// kStatsTag: a rank's time in communication over a run, for rank 0 (parallel/communication_stats.h).
enum ControlTag : int { kPlanTag = 101, kResultTag = 102, kProgressTag = 103, kStatsTag = 104 };
constexpr int kAnyRank = -1;

}  // namespace lattice::parallel
