// Host-only: cuBLASLt does the work. Kept a .cu so that the op is one .cu/.cuh pair like the others.
#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm.cuh"

namespace lattice::kernels::cuda {

namespace {

template <typename T> constexpr cudaDataType_t data_type();
template <> constexpr cudaDataType_t data_type<float>() { return CUDA_R_32F; }
template <> constexpr cudaDataType_t data_type<__half>() { return CUDA_R_16F; }
template <> constexpr cudaDataType_t data_type<__nv_bfloat16>() { return CUDA_R_16BF; }

// Descriptors and the chosen algorithm of one shape.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

// m, n, k, input type, output type, alignments of a, b, c and the bias (bytes, at most 256; 0: no bias).
using PlanKey = std::tuple<int64_t, int64_t, int64_t, int, int, uint32_t, uint32_t, uint32_t, uint32_t>;

uint32_t alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && address % align != 0) align /= 2;
  return align;
}

}  // namespace

struct GemmLt::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;

  // A row-major [r, c] buffer is a column-major c x r matrix, so cuBLASLt computes C (n x m, ld n) =
  // op_T(Bm) Am with Bm = b's buffer as k x n (ld k) and Am = a's buffer as k x m (ld k):
  // C[j, i] = sum_l b[j, l] a[i, l] = c[i, j]. Alignments enter the key because an algorithm chosen for
  // 256-byte aligned pointers may refuse a view that starts mid-row. A bias [n] is the epilogue
  // CUBLASLT_EPILOGUE_BIAS: its length is C's row count n, broadcast over the m columns, added in f32 before
  // the rounding to the output type, and it has the output's type. The heuristic reads the bias pointer's
  // alignment from the descriptor, so `bias` (any pointer of the call's alignment) is set before it runs.
  const Plan& plan(int64_t m, int64_t n, int64_t k, cudaDataType_t in, cudaDataType_t out, uint32_t align_a,
                   uint32_t align_b, uint32_t align_c, const void* bias) {
    const uint32_t align_bias = bias ? alignment(bias) : 0;
    const PlanKey key{m, n, k, static_cast<int>(in), static_cast<int>(out), align_a, align_b, align_c, align_bias};
    auto found = plans.find(key);
    if (found != plans.end()) return *found->second;
    auto p = std::make_unique<Plan>();
    const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;  // f32 accumulation; for f32 inputs no TF32
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F));
    const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans, sizeof(no_trans)));
    if (bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, in, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, in, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, out, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n));

    cublasLtMatmulPreference_t pref = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t result{};
    int found_algos = 0;
    const cublasStatus_t status = [&] {
      const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
          // cuBLASLt's "A" is our b, its "B" is our a.
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
      for (const auto& [attribute, value] : aligns) {
        const cublasStatus_t set = cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value));
        if (set != CUBLAS_STATUS_SUCCESS) return set;
      }
      const cublasStatus_t set = cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes, sizeof(workspace_bytes));
      if (set != CUBLAS_STATUS_SUCCESS) return set;
      return cublasLtMatmulAlgoGetHeuristic(handle, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &found_algos);
    }();
    cublasLtMatmulPreferenceDestroy(pref);
    CUBLAS_CHECK(status);
    LATTICE_CHECK(found_algos > 0, "cuBLASLt has no algorithm for gemm m=", m, " n=", n, " k=", k,
                  bias ? " with a bias" : "", " within a workspace of ", workspace_bytes, " bytes");
    p->algo = result.algo;
    return *plans.emplace(key, std::move(p)).first->second;
  }
};

GemmLt::GemmLt(void* workspace, size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspace = workspace;
  impl_->workspace_bytes = workspace ? workspace_bytes : 0;
}

GemmLt::~GemmLt() {
  impl_->plans.clear();
  if (impl_->handle) cublasLtDestroy(impl_->handle);
}

size_t GemmLt::cached_plans() const { return impl_->plans.size(); }

template <typename TIn, typename TOut>
void GemmLt::gemm_nt(const TIn* a, const TIn* b, TOut* c, int64_t m, int64_t n, int64_t k, cudaStream_t stream,
                     const TOut* bias) {
  if (m == 0 || n == 0) return;
  LATTICE_CHECK(k > 0, "gemm_nt: k must be positive, got ", k, " (m=", m, ", n=", n, ")");
  const Plan& p = impl_->plan(m, n, k, data_type<TIn>(), data_type<TOut>(), alignment(a), alignment(b), alignment(c),
                              bias);
  if (bias)  // the plan may have been made for another bias of the same alignment
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(impl_->handle, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo,
                              impl_->workspace, impl_->workspace_bytes, stream));
}

#define LATTICE_INSTANTIATE(TIn, TOut)                                                                        \
  template void GemmLt::gemm_nt<TIn, TOut>(const TIn*, const TIn*, TOut*, int64_t, int64_t, int64_t, cudaStream_t, \
                                           const TOut*);
LATTICE_INSTANTIATE(float, float)
LATTICE_INSTANTIATE(__half, __half)
LATTICE_INSTANTIATE(__half, float)
LATTICE_INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
LATTICE_INSTANTIATE(__nv_bfloat16, float)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
