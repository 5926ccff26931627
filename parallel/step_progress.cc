#include "parallel/step_progress.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/error.h"

namespace lattice::parallel {

std::string encode_progress(StepPhase phase, int64_t step) {
  std::string bytes(9, '\0');
  bytes[0] = static_cast<char>(phase);
  for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>((static_cast<uint64_t>(step) >> (8 * i)) & 0xff);
  return bytes;
}

std::pair<StepPhase, int64_t> decode_progress(const std::string& bytes) {
  LATTICE_CHECK(bytes.size() == 9, "a progress message has 9 bytes, got ", bytes.size());
  const auto phase = static_cast<uint8_t>(bytes[0]);
  LATTICE_CHECK(phase <= static_cast<uint8_t>(StepPhase::finished), "unknown progress phase ", static_cast<int>(phase));
  uint64_t step = 0;
  for (int i = 0; i < 8; ++i) step |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[1 + i])) << (8 * i);
  return {static_cast<StepPhase>(phase), static_cast<int64_t>(step)};
}

StepProgress::StepProgress(int world_size)
    : started_(static_cast<size_t>(world_size)), finished_(static_cast<size_t>(world_size)) {
  LATTICE_CHECK(world_size >= 1, "StepProgress over ", world_size, " ranks");
}

void StepProgress::record(int world_rank, StepPhase phase, int64_t step) {
  LATTICE_CHECK(world_rank >= 0 && world_rank < world_size(), "progress from rank ", world_rank, " outside a world of ",
                world_size());
  std::atomic<int64_t>& slot = (phase == StepPhase::started ? started_ : finished_)[static_cast<size_t>(world_rank)];
  int64_t seen = slot.load(std::memory_order_relaxed);
  while (step > seen && !slot.compare_exchange_weak(seen, step, std::memory_order_relaxed)) {
  }
}

std::vector<std::string> stall_report(const StepProgress& progress, const Topology& grid, int replica, int64_t step,
                                      double seconds) {
  LATTICE_CHECK(progress.world_size() == grid.world_size, "progress over ", progress.world_size(),
                " ranks for a grid of ", grid.world_size);
  LATTICE_CHECK(replica >= 0 && replica < grid.dp, "replica ", replica, " of ", grid.dp);
  auto received = [&](int r) { return progress.last_started(r) >= step; };
  auto finished = [&](int r) { return progress.last_finished(r) >= step; };
  auto topology = [&](int r) { return Topology::make(grid.world_size, r, grid.tp, grid.pp, grid.dp); };
  // The rank that hands `r` its plans: rank 0 on the first stage (it broadcasts replica 0's plans before running
  // them and posts the other replicas' to their leaders), the same TP rank of the previous stage after (which
  // sends the plan on when it has run its layers).
  auto feeder = [&](int r) {
    const Topology t = topology(r);
    return t.is_first_stage() ? 0 : t.world_rank(t.pp_rank - 1, t.tp_rank);
  };
  // Rank 0 has a remote replica's step once it was submitted, which the watchdog's question implies.
  auto fed = [&](int r) { return topology(r).is_first_stage() ? replica > 0 || received(0) : finished(feeder(r)); };
  const int first = grid.replica_rank(replica, 0, 0), end = first + grid.replica_size();
  std::vector<int> suspects, unfinished;
  for (int r = first; r < end; ++r)
    if (!finished(r)) unfinished.push_back(r);
  for (int r : unfinished)
    if (r != 0 && !received(r) && fed(r)) suspects.push_back(r);
  if (suspects.empty() && !unfinished.empty()) {
    // Every rank that has not finished had received the step, or none had: those furthest behind.
    int64_t least = progress.last_started(unfinished.front());
    for (int r : unfinished) least = std::min(least, progress.last_started(r));
    for (int r : unfinished)
      if (progress.last_started(r) == least) suspects.push_back(r);
  }
  std::vector<std::string> lines;
  if (suspects.empty()) return lines;
  char after[32];
  std::snprintf(after, sizeof after, "%.3g s", seconds);
  std::string all = "progress by rank (last step received/finished):";
  for (int r = first; r < end; ++r) {
    char entry[64];
    std::snprintf(entry, sizeof entry, " %d: %lld/%lld%s", r, static_cast<long long>(progress.last_started(r)),
                  static_cast<long long>(progress.last_finished(r)), r + 1 < end ? "," : "");
    all += entry;
  }
  const std::string of_replica = grid.dp > 1 ? ", replica " + std::to_string(replica) : "";
  for (int r : suspects) {
    const Topology t = topology(r);
    const std::string sent = " (it has not received it; rank " + std::to_string(feeder(r)) + " has sent it)";
    lines.push_back("rank " + std::to_string(r) + " (tp " + std::to_string(t.tp_rank) + "/" + std::to_string(t.tp) +
                    ", pp " + std::to_string(t.pp_rank) + "/" + std::to_string(t.pp) + of_replica +
                    ") has not finished step " +
                    std::to_string(step) + " after " + after +
                    (received(r) ? " (it has received it)" : r != 0 && fed(r) ? sent : " (it has not received it)"));
  }
  lines.push_back(all);
  return lines;
}

}  // namespace lattice::parallel
