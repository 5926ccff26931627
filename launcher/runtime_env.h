// Environment that libraries read once, when they load, so it must be right before main() uses them:
// - OpenBLAS picks its kernels at load, and Debian's 0.3.21 misdetects recent CPUs (recent Intel as
//   "Prescott", AVX-512 AMD as "Haswell"), leaving sgemm two to five times slower. OPENBLAS_CORETYPE is
//   chosen from the CPU's features; LATTICE_BLAS_CORETYPE overrides the choice.
// - `lattice serve` shares its cores between OpenMP compute threads and HTTP/gRPC threads; OpenMP's default
//   spin-waiting starves the latter, so serve sets OMP_WAIT_POLICY=passive unless the user chose a policy.
// When anything has to change, the launcher sets it and re-executes itself once, before any library call.
#pragma once

#include <string>

namespace lattice::launcher {

// Returns normally when the environment is already right; otherwise sets it and execs argv again.
void prepare_runtime_environment(int argc, char** argv);

// For reports: "SkylakeX" or "SkylakeX (replaced OPENBLAS_CORETYPE=Haswell from the environment)".
std::string blas_selection_note(const char* core_in_use);

}  // namespace lattice::launcher
