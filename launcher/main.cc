// lattice: the command-line entry point. The only place that ends the process on an error: a single
// process exits 1; under MPI the failing rank logs the error with its rank and aborts the whole job.
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "launcher/runtime_env.h"
#include "launcher/commands.h"

namespace {

using lattice::parallel::MpiRuntime;

struct Command {
  const char* name;
  int (*run)(const lattice::launcher::Args&, MpiRuntime*);
  const char* help;
};

const Command kCommands[] = {
    {"generate", lattice::launcher::generate_command, "generate tokens for prompts or a requests file"},
    {"bench", lattice::launcher::bench_command, "measure prefill/decode speed against the machine's ceilings"},
    {"bench-kernels", lattice::launcher::bench_kernels_command, "time the paged attention kernels on one GPU"},
    {"plan", lattice::launcher::plan_command, "predict memory and speed of tp x pp x dp layouts (no GPU needed)"},
    {"make-model", lattice::launcher::make_model_command, "write a deterministic random-weight Llama checkpoint"},
    {"tokenize", lattice::launcher::tokenize_command, "encode text with a model's tokenizer.json"},
    {"detokenize", lattice::launcher::detokenize_command, "decode token ids with a model's tokenizer.json"},
#ifdef LATTICE_WITH_SERVE  // needs cpp-httplib and gRPC (scripts/setup)
    {"serve", lattice::launcher::serve_command, "OpenAI-compatible HTTP and gRPC server with Prometheus metrics"},
    {"bench-serve", lattice::launcher::bench_serve_command, "load-test a running server (Poisson arrivals, latency percentiles)"},
#endif
};

void usage(FILE* out) {
  std::fprintf(out, "usage: lattice <command> [flags]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.help);
  std::fprintf(out, "\nRun 'lattice <command> --help' for a command's flags. Under mpirun, generate splits the\n"
                    "model over --tp x --pp ranks, --dp times (see docs/parallelism.md).\n");
}

}  // namespace

int main(int argc, char** argv) {
  lattice::launcher::prepare_runtime_environment(argc, argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const Command* command = nullptr;
  for (const Command& c : kCommands)
    if (!std::strcmp(argv[1], c.name)) command = &c;
  if (!command) {
    std::fprintf(stderr, "lattice: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
  }
  std::unique_ptr<MpiRuntime> mpi;
  try {
    if (MpiRuntime::launched_by_mpi()) mpi = std::make_unique<MpiRuntime>(&argc, &argv);
    return command->run(lattice::launcher::Args(argv + 2, argv + argc), mpi.get());
  } catch (const std::exception& e) {
    const std::string where = mpi ? "[rank " + std::to_string(mpi->world_rank()) + "] " : "";
    std::fprintf(stderr, "%slattice %s: error: %s\n", where.c_str(), command->name, e.what());
    if (mpi && mpi->world_size() > 1) MpiRuntime::abort_job(1);
    return 1;
  }
}
