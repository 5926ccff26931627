// lattice bench over several ranks (mpirun -np N lattice bench --tp T --pp P): the workers' side of each run, and
// the time in communication per step that every rank measured, gathered to rank 0 for the report.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher/engine_setup.h"
#include "parallel/communication_stats.h"

namespace lattice::launcher {

// Every rank, at the start of each run: waits until every rank is there, then returns this rank's
// communication counters and CUDA-graph replays (subtract it from bench_counters() after the run). The
// rendezvous keeps out of the run's figures the time a worker waits while rank 0 does other work between runs
// (measuring the machine's ceilings, printing).
parallel::RankCommunication begin_bench_run(LoadedEngine& e);
// This rank's communication counters and CUDA-graph replays now.
parallel::RankCommunication bench_counters(const LoadedEngine& e);

// Every rank but 0: follows `runs` runs, each until rank 0's shutdown plan, then sends rank 0 its communication
// over the run.
void follow_bench_runs(LoadedEngine& e, size_t runs);

// The report's fields for one run of `steps` steps, from every rank's figures (rank 0's vector from
// gather_communication): per rank, ms per step of each kind over the steps it timed (those not replayed from a
// CUDA graph); communication_ms_per_step is the maximum over ranks of their totals, _mean their mean.
nlohmann::ordered_json communication_json(const std::vector<parallel::RankCommunication>& ranks, int64_t steps);

// One line per run and rank (ms per step: TP collectives, PP send/recv, control channel), for the table.
void print_communication(const std::vector<nlohmann::ordered_json>& runs);

}  // namespace lattice::launcher
