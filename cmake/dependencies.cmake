# System dependencies (installed by scripts/setup).
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)

# OpenBLAS: prefer the OpenMP flavour so BLAS and our kernels share one thread pool
# (two spinning pools on a 2-core machine fight each other).
find_library(LATTICE_BLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT LATTICE_BLAS_LIBRARY)
  find_library(LATTICE_BLAS_LIBRARY NAMES openblas REQUIRED)
endif()
find_path(LATTICE_CBLAS_INCLUDE NAMES cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-openmp REQUIRED)

if(LATTICE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# Tokenizer: PCRE2 for HF pre-tokenizer regexes (\p{L}, look-ahead), utf8proc for NFC.
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)

# Serving: cpp-httplib (HTTP front end) and gRPC (streaming API); Debian ships httplib as a compiled library.
# Without them (a machine that has not run scripts/setup since they were added) lattice builds without the
# serve and bench-serve commands instead of failing to configure.
find_package(Threads REQUIRED)
pkg_check_modules(HTTPLIB IMPORTED_TARGET cpp-httplib)
pkg_check_modules(HIREDIS IMPORTED_TARGET hiredis)  # optional: the Redis response cache
find_package(gRPC CONFIG QUIET)
if(HTTPLIB_FOUND AND gRPC_FOUND)
  set(LATTICE_WITH_SERVE ON)
else()
  set(LATTICE_WITH_SERVE OFF)
  message(WARNING "cpp-httplib or gRPC not found (scripts/setup installs them): building without lattice serve")
endif()
