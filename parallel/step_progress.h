// How far each rank of the job has got through the step plans, as the coordinator knows it: the liveness
// record that the serve step watchdog reads to name a stalled rank.
//
// Every rank runs every plan, in order, so "step N" is the N-th plan (from 1) on every rank. Workers post a
// small non-blocking message to rank 0 when they receive plan N and when they have finished their part of it
// (ControlChannel::post, kProgressTag: no collective, nothing waits on it); the coordinator's PipelineExecutor
// drains them whenever it submits or collects and records them here. Readers on other threads (the watchdog)
// see plain atomics and never call MPI. Keyed by world rank, so it covers every rank of the job.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/topology.h"

namespace lattice::parallel {

enum class StepPhase : uint8_t { started = 0, finished = 1 };

// A progress message: 9 bytes (the phase, then the step number little-endian).
std::string encode_progress(StepPhase phase, int64_t step);
// Throws on a message that is not 9 bytes or has an unknown phase.
std::pair<StepPhase, int64_t> decode_progress(const std::string& bytes);

class StepProgress {
 public:
  explicit StepProgress(int world_size);
  int world_size() const { return static_cast<int>(started_.size()); }
  // Monotonic: an older step than the one recorded is ignored. Any thread.
  void record(int world_rank, StepPhase phase, int64_t step);
  int64_t last_started(int world_rank) const { return started_.at(world_rank).load(std::memory_order_relaxed); }
  int64_t last_finished(int world_rank) const { return finished_.at(world_rank).load(std::memory_order_relaxed); }

 private:
  std::vector<std::atomic<int64_t>> started_, finished_;  // 0: none yet
};

// The report of replica `replica`'s step `step` (its step-th plan) that has not finished on every rank of that
// replica of the grid `grid` (any rank's Topology: only its sizes are used) after `seconds`: one line per suspect, "rank 3 (tp 1/2, pp 1/2) has not finished step 42
// after 60 s (it has not received it; rank 1 has sent it)", then one line with every rank's progress.
// Suspects: the ranks that have not received the step although the rank that hands them their plans has sent
// it (rank 0 for the first stage, once it has the step; the same TP rank of the previous stage, once it has
// finished it); when there are none (a rank stuck inside a step), the unfinished ranks furthest behind. Ranks
// that only wait on a suspect of the first kind are not named. As rank 0 last heard: a progress message still
// in flight counts as not sent. Empty if every rank has finished `step`.
std::vector<std::string> stall_report(const StepProgress& progress, const Topology& grid, int replica, int64_t step,
                                      double seconds);

}  // namespace lattice::parallel
