#include "launcher/runtime_env.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lattice::launcher {

namespace {

const char* core_for_this_cpu() {
  if (const char* forced = std::getenv("LATTICE_BLAS_CORETYPE")) return forced;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2")) return "Haswell";
#endif
  return nullptr;  // let OpenBLAS decide
}

}  // namespace

void prepare_runtime_environment(int argc, char** argv) {
  if (std::getenv("LATTICE_ENV_PREPARED")) return;  // already re-executed (or tried to)
  setenv("LATTICE_ENV_PREPARED", "1", 1);
  bool changed = false;
  const char* core = core_for_this_cpu();
  const char* current = std::getenv("OPENBLAS_CORETYPE");
  if (core && !(current && std::strcmp(current, core) == 0)) {
    if (current) setenv("LATTICE_BLAS_REPLACED", current, 1);
    setenv("OPENBLAS_CORETYPE", core, 1);
    changed = true;
  }
  if (argc > 1 && std::strcmp(argv[1], "serve") == 0 && !std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    changed = true;
  }
  if (!changed) return;
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "lattice: warning: could not re-exec to prepare the environment; continuing\n");
}

std::string blas_selection_note(const char* core_in_use) {
  std::string note = core_in_use;
  if (const char* replaced = std::getenv("LATTICE_BLAS_REPLACED"))
    note += std::string(" (replaced OPENBLAS_CORETYPE=") + replaced + " from the environment)";
  return note;
}

}  // namespace lattice::launcher
