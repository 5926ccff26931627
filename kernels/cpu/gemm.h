// Matrix products through BLAS (row-major, f32).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// c[m, n] = a[m, k] @ b[n, k]^T (+ bias[n] on every row when bias is not null). b is a weight in the HF
// [out, in] layout.
void gemm_nt_f32(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
                 const float* bias = nullptr);

// Name of the BLAS kernel set in use (e.g. OpenBLAS "Haswell", "SkylakeX").
const char* blas_core_name();

}  // namespace lattice::kernels::cpu
