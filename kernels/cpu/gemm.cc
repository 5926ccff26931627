#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include <cstring>

extern "C" char* openblas_get_corename(void);

namespace lattice::kernels::cpu {

void gemm_nt_f32(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, const float* bias) {
  // With a bias, c starts as the bias on every row and BLAS accumulates onto it (beta = 1).
  if (bias)
    for (int64_t r = 0; r < m; ++r) std::memcpy(c + r * n, bias, sizeof(float) * n);
  const float beta = bias ? 1.0f : 0.0f;
  if (m == 1) {  // decode at batch 1: a matrix-vector product reads each weight once
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0f, b,
                static_cast<int>(k), a, 1, beta, c, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(k), beta, c,
              static_cast<int>(n));
}

const char* blas_core_name() { return openblas_get_corename(); }

}  // namespace lattice::kernels::cpu
