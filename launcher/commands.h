// The lattice sub-commands. Each takes the arguments after its name and returns the exit code;
// errors are thrown as lattice::Error and reported by main.
#pragma once

#include <string>
#include <vector>

#include "parallel/mpi_runtime.h"

namespace lattice::launcher {

using Args = std::vector<std::string>;

// `mpi` is set when the process was started by mpirun/srun (MPI is initialised), null otherwise.
int generate_command(const Args& args, parallel::MpiRuntime* mpi);
int bench_command(const Args& args, parallel::MpiRuntime* mpi);
int bench_kernels_command(const Args& args, parallel::MpiRuntime* mpi);
int make_model_command(const Args& args, parallel::MpiRuntime* mpi);
int tokenize_command(const Args& args, parallel::MpiRuntime* mpi);
int detokenize_command(const Args& args, parallel::MpiRuntime* mpi);
int serve_command(const Args& args, parallel::MpiRuntime* mpi);
int bench_serve_command(const Args& args, parallel::MpiRuntime* mpi);
int plan_command(const Args& args, parallel::MpiRuntime* mpi);

}  // namespace lattice::launcher
