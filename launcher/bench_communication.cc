#include "launcher/bench_communication.h"

#include <algorithm>
#include <cstdio>

#include "parallel/pipeline_executor.h"

namespace lattice::launcher {

parallel::RankCommunication bench_counters(const LoadedEngine& e) {
  parallel::RankCommunication r = parallel::communication_counters(e.ctx);
  r.graph_steps = e.runner->graph_steps();
  return r;
}

parallel::RankCommunication begin_bench_run(LoadedEngine& e) {
  if (e.ctx.control) e.ctx.control->world_min(0);
  return bench_counters(e);
}

void follow_bench_runs(LoadedEngine& e, size_t runs) {
  parallel::StageRunner stage(e.ctx, *e.runner);
  for (size_t i = 0; i < runs; ++i) {
    const parallel::RankCommunication before = begin_bench_run(e);
    parallel::run_worker(stage, {});
    parallel::gather_communication(e.ctx, bench_counters(e) - before);
  }
}

nlohmann::ordered_json communication_json(const std::vector<parallel::RankCommunication>& ranks, int64_t steps) {
  nlohmann::ordered_json per_rank = nlohmann::ordered_json::array();
  double max_ms = 0, sum_ms = 0;
  for (const parallel::RankCommunication& r : ranks) {
    const int64_t timed = steps - r.graph_steps;
    const double per_step = timed > 0 ? 1e3 / static_cast<double>(timed) : 0.0;
    const double total_ms = r.total_seconds() * per_step;
    max_ms = std::max(max_ms, total_ms);
    sum_ms += total_ms;
    per_rank.push_back({{"rank", r.rank},
                        {"timed_steps", timed},
                        {"tp_ms_per_step", r.tp_seconds * per_step},
                        {"pp_ms_per_step", r.pp_seconds * per_step},
                        {"control_ms_per_step", r.control_seconds * per_step},
                        {"total_ms_per_step", total_ms}});
  }
  return {{"communication_ms_per_step", max_ms},
          {"communication_ms_per_step_mean", ranks.empty() ? 0.0 : sum_ms / static_cast<double>(ranks.size())},
          {"communication_per_rank", per_rank}};
}

void print_communication(const std::vector<nlohmann::ordered_json>& runs) {
  std::printf("communication per rank, ms per timed step (TP collectives + PP send/recv + plans and results):\n");
  for (const auto& run : runs)
    for (const auto& r : run["communication_per_rank"])
      std::printf("  batch %lld rank %d: %.3f + %.3f + %.3f = %.3f over %lld steps\n",
                  static_cast<long long>(run["batch"].get<int64_t>()), r["rank"].get<int>(),
                  r["tp_ms_per_step"].get<double>(), r["pp_ms_per_step"].get<double>(),
                  r["control_ms_per_step"].get<double>(), r["total_ms_per_step"].get<double>(),
                  static_cast<long long>(r["timed_steps"].get<int64_t>()));
}

}  // namespace lattice::launcher
