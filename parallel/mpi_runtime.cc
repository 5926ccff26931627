#include "parallel/mpi_runtime.h"

#include <cstdlib>
#include <cstdio>

#include "parallel/mpi_check.h"
#include "parallel/mpi_communicator.h"
#ifdef LATTICE_HAVE_CUDA
#include "kernels/cuda/device_info.h"
#include "parallel/host_staged_communicator.h"
#endif
#ifdef LATTICE_HAVE_NCCL
#include "parallel/nccl_communicator.h"
#endif

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

// The link between stages k and k + 1 of a replica joins its ranks with the same tp_rank. Links are built in two
// world-collective splits (even k, then odd k) so that every rank takes part in each split exactly once.
MPI_Comm split_link(const Topology& t, int parity) {
  int link = -1;
  if (t.pp_rank % 2 == parity && t.pp_rank + 1 < t.pp) link = t.pp_rank;            // towards the next stage
  if ((t.pp_rank - 1) % 2 == parity && t.pp_rank >= 1) link = t.pp_rank - 1;        // towards the previous one
  MPI_Comm comm = MPI_COMM_NULL;
  const int color = (t.dp_rank * t.pp + link) * t.tp + t.tp_rank;  // one link per replica, stage pair and TP rank
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, link < 0 ? MPI_UNDEFINED : color, t.pp_rank, &comm));
  return comm;
}

// Every rank must use the same backend (a TP group cannot mix NCCL and MPI): one node whose ranks share GPUs
// moves the whole job to host staging.
void agree_on_backend(CommunicatorChoice& choice) {
  int mine = static_cast<int>(choice.backend), least = mine;
  MPI_CHECK(MPI_Allreduce(&mine, &least, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (least == mine) return;
  choice.backend = static_cast<CommBackend>(least);
  choice.reason = "ranks on another node share GPUs; NCCL needs one GPU per rank on every node";
}

// The tensor communicator over `comm` (which it takes over) for the chosen backend.
std::unique_ptr<Communicator> make_tensor_communicator(MPI_Comm comm, const CommunicatorChoice& choice,
                                                       const DeviceBinding* device, const std::string& label) {
  switch (choice.backend) {
    case CommBackend::single:
    case CommBackend::mpi: return make_mpi_communicator(comm);
    case CommBackend::mpi_host_staging:
#ifdef LATTICE_HAVE_CUDA
      return make_host_staged_communicator(make_mpi_communicator(comm), *device);
#else
      break;
#endif
    case CommBackend::nccl: {
#ifdef LATTICE_HAVE_NCCL
      NcclOptions options;
      options.device = device->index;
      options.stream = device->stream;
      options.label = label;
      auto nccl = make_nccl_communicator(comm, options);  // borrows comm for the set-up only
      MPI_Comm_free(&comm);
      return nccl;
#else
      break;
#endif
    }
  }
  MPI_Comm_free(&comm);
  LATTICE_THROW("communicator '", backend_name(choice.backend), "' is not in this build");
}

}  // namespace

CommunicatorChoice choose_device_communicator(const MpiRuntime& mpi) {
#ifdef LATTICE_HAVE_CUDA
  const auto& info = kernels::cuda::device_info();
  LATTICE_CHECK(info.count > 0, "world rank ", mpi.world_rank(), " sees no CUDA device: ", info.reason);
  return choose_device_communicator(mpi.local_rank(), mpi.local_size(), info.count, nccl_built());
#else
  LATTICE_THROW("world rank ", mpi.world_rank(), ": this build has no CUDA backend (LATTICE_WITH_CUDA=OFF)");
#endif
}

ParallelContext make_parallel_context(const MpiRuntime& mpi, int tp, int pp, int dp, const DeviceBinding* device) {
  ParallelContext ctx;
  ctx.topo = Topology::make(mpi.world_size(), mpi.world_rank(), tp, pp, dp, mpi.local_rank(), mpi.local_size());
  if (device) {
    ctx.comm = choose_device_communicator(mpi);
    LATTICE_CHECK(device->index == ctx.comm.device_id, ctx.topo.describe(), " computes on cuda:", device->index,
                  ", but its communicator (", ctx.comm.describe(), ") puts it on cuda:", ctx.comm.device_id);
    agree_on_backend(ctx.comm);
    ctx.topo.device_id = ctx.comm.device_id;
  } else {
    ctx.comm = choose_host_communicator(mpi.world_size());
  }
  const Topology& t = ctx.topo;
  const std::string of_rank = " of world rank " + std::to_string(t.rank);
  MPI_Comm tp_comm, control_comm;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, t.dp_rank * t.pp + t.pp_rank, t.tp_rank, &tp_comm));  // a replica's stage
  MPI_CHECK(MPI_Comm_dup(tp_comm, &control_comm));
  ctx.tp = make_tensor_communicator(tp_comm, ctx.comm, device, "tp group" + of_rank);
  ctx.control = make_mpi_control_channel(MPI_COMM_WORLD, control_comm);
  for (int parity = 0; parity < 2; ++parity) {
    MPI_Comm link = split_link(t, parity);
    if (link == MPI_COMM_NULL) continue;
    int link_rank = 0;
    MPI_CHECK(MPI_Comm_rank(link, &link_rank));
    const bool to_next = link_rank == 0;
    const std::string label = (to_next ? "pp link to stage " + std::to_string(t.pp_rank + 1)
                                       : "pp link to stage " + std::to_string(t.pp_rank - 1)) + of_rank;
    (to_next ? ctx.next : ctx.prev) = make_tensor_communicator(link, ctx.comm, device, label);
  }
  return ctx;
}

void ParallelContext::synchronize() {
  for (Communicator* c : {tp.get(), prev.get(), next.get()})
    if (c) c->synchronize();
}

ParallelContext make_single_process_context() {
  ParallelContext ctx;
  ctx.tp = make_single_rank_communicator();
  return ctx;
}

}  // namespace lattice::parallel
