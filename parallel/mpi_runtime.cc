#include "parallel/mpi_runtime.h"

#include <cstdlib>
#include <cstdio>

#include "parallel/mpi_check.h"
#include "parallel/mpi_communicator.h"

namespace lattice::parallel {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  LATTICE_CHECK(provided >= MPI_THREAD_FUNNELED, "the MPI library provides thread level ", provided,
                "; Lattice needs MPI_THREAD_FUNNELED (threads that never call MPI)");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors become exceptions via MPI_CHECK
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  MPI_Comm node;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  MPI_CHECK(MPI_Comm_size(node, &local_size_));
  MPI_Comm_free(&node);
  if (const char* slurm = std::getenv("SLURM_LOCALID")) local_rank_ = std::atoi(slurm);
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool MpiRuntime::launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_RANK") || std::getenv("PMIX_RANK");
}

void MpiRuntime::abort_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this only satisfies [[noreturn]]
}

namespace {

// The link between stages k and k + 1 joins the ranks with the same tp_rank. Links are built in two
// world-collective splits (even k, then odd k) so that every rank takes part in each split exactly once.
MPI_Comm split_link(const Topology& t, int parity) {
  int link = -1;
  if (t.pp_rank % 2 == parity && t.pp_rank + 1 < t.pp) link = t.pp_rank;            // towards the next stage
  if ((t.pp_rank - 1) % 2 == parity && t.pp_rank >= 1) link = t.pp_rank - 1;        // towards the previous one
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, link < 0 ? MPI_UNDEFINED : link * t.tp + t.tp_rank, t.pp_rank, &comm));
  return comm;
}

}  // namespace

ParallelContext make_mpi_context(const MpiRuntime& mpi, int tp, int pp) {
  ParallelContext ctx;
  ctx.topo = Topology::make(mpi.world_size(), mpi.world_rank(), tp, pp, mpi.local_rank(), mpi.local_size());
  const Topology& t = ctx.topo;
  MPI_Comm tp_comm, control_comm;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, t.pp_rank, t.tp_rank, &tp_comm));
  MPI_CHECK(MPI_Comm_dup(tp_comm, &control_comm));
  ctx.tp = make_mpi_communicator(tp_comm);
  ctx.control = make_mpi_control_channel(MPI_COMM_WORLD, control_comm);
  for (int parity = 0; parity < 2; ++parity) {
    MPI_Comm link = split_link(t, parity);
    if (link == MPI_COMM_NULL) continue;
    int link_rank = 0;
    MPI_CHECK(MPI_Comm_rank(link, &link_rank));
    (link_rank == 0 ? ctx.next : ctx.prev) = make_mpi_communicator(link);
  }
  return ctx;
}

ParallelContext make_single_process_context() {
  ParallelContext ctx;
  ctx.tp = make_single_rank_communicator();
  return ctx;
}

}  // namespace lattice::parallel
