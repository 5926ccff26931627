// OpenBLAS picks its kernels once, when the library loads, and Debian's 0.3.21 misdetects recent CPUs
// (recent Intel as "Prescott", AVX-512 AMD as "Haswell"), leaving sgemm two to five times slower. So the
// launcher chooses OPENBLAS_CORETYPE from the CPU's features and, when the environment differs, re-executes
// itself before any BLAS call so that the library loads with the right kernels. LATTICE_BLAS_CORETYPE
// overrides the choice (it is copied to OPENBLAS_CORETYPE as is).
#pragma once

#include <string>

namespace lattice::launcher {

// Returns normally when the environment is already right; otherwise sets it and execs argv again.
void select_blas_kernels(char** argv);

// For reports: "SkylakeX" or "SkylakeX (replaced OPENBLAS_CORETYPE=Haswell from the environment)".
std::string blas_selection_note(const char* core_in_use);

}  // namespace lattice::launcher
