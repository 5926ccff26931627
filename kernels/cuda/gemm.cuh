// Matrix products through cuBLASLt (CUDA), mirroring kernels/cpu/gemm.h gemm_nt_f32: row-major
// c[m, n] = a[m, k] @ b[n, k]^T (+ bias[n]) with b a weight in the HF [out, in] layout; f32 accumulation.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace lattice::kernels::cuda {

// One cuBLASLt handle, a caller-owned device workspace, and a cache of planned shapes: the descriptors and
// the heuristic's algorithm are chosen once per (m, n, k, dtypes) and reused, so steady-state calls make no
// heuristic query (and can be captured in a CUDA graph after the first call of each shape).
// Not thread-safe: one per stream/thread.
class GemmLt {
 public:
  // workspace: device memory for cuBLASLt (32 MiB is what cuBLAS itself uses on Hopper); may be null when
  // workspace_bytes is 0, which restricts the heuristic to algorithms without workspace.
  GemmLt(void* workspace, size_t workspace_bytes);
  ~GemmLt();
  GemmLt(const GemmLt&) = delete;
  GemmLt& operator=(const GemmLt&) = delete;

  // bias: null, or [n] of the output type added to every row of c (a cuBLASLt epilogue, no extra pass).
  // Instantiated for (TIn, TOut) in {(float, float), (__half, __half), (__half, float),
  // (__nv_bfloat16, __nv_bfloat16), (__nv_bfloat16, float)}. f32 inputs use full f32 math (no TF32).
  template <typename TIn, typename TOut>
  void gemm_nt(const TIn* a, const TIn* b, TOut* c, int64_t m, int64_t n, int64_t k, cudaStream_t stream,
               const TOut* bias = nullptr);

  size_t cached_plans() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lattice::kernels::cuda
