// CUDA implementations of engine/ops/ops.h (operands already checked by the public ops).
#include <cuda_runtime_api.h>

#include "engine/ops/cuda_dtype.h"
#include "engine/ops/cuda_ops.h"
#include "kernels/cuda/add.cuh"
#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/head_rms_norm.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/rope_kv.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace lattice::ops::cuda_impl {

namespace gpu = kernels::cuda;

void embedding(const ExecContext& ctx, const Tensor& table, const Tensor& ids, int64_t first_id, Tensor& out) {
  with_float_type("embedding", table.dtype(), [&]<typename T>(std::type_identity<T>) {
    if (out.dtype() == DType::f32)
      gpu::embedding(ptr<const T>(table), first_id, table.dim(0), ptr<const int32_t>(ids), ptr<float>(out),
                     ids.dim(0), table.dim(1), ctx.stream);
    else
      gpu::embedding(ptr<const T>(table), first_id, table.dim(0), ptr<const int32_t>(ids), ptr<T>(out), ids.dim(0),
                     table.dim(1), ctx.stream);
  });
}

void rms_norm(const ExecContext& ctx, const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  with_float_type("rms_norm", x.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::rms_norm(ptr<const T>(x), static_cast<T*>(nullptr), ptr<const T>(weight), ptr<T>(out), x.dim(0), x.dim(1),
                  eps, ctx.stream);
  });
}

void add_rms_norm(const ExecContext& ctx, const Tensor& x, Tensor& residual, const Tensor& weight, float eps,
                  Tensor& out) {
  with_float_type("add_rms_norm", x.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::rms_norm(ptr<const T>(x), ptr<T>(residual), ptr<const T>(weight), ptr<T>(out), x.dim(0), x.dim(1), eps,
                  ctx.stream);
  });
}

void head_rms_norm(const ExecContext& ctx, Tensor& qkv, int64_t col_begin, int64_t heads, const Tensor& weight,
                   float eps) {
  with_float_type("head_rms_norm", qkv.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::head_rms_norm(ptr<T>(qkv) + col_begin, qkv.dim(1), ptr<const T>(weight), qkv.dim(0), heads, weight.dim(0),
                       eps, ctx.stream);
  });
}

void add_(const ExecContext& ctx, Tensor& x, const Tensor& y) {
  with_float_type("add", x.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::add_inplace(ptr<T>(x), ptr<const T>(y), x.numel(), ctx.stream);
  });
}

void linear(const ExecContext& ctx, const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  LATTICE_CHECK(ctx.gemm != nullptr, "linear on ", ctx.device.str(), ": the context has no GemmLt");
  // cuBLASLt's bias epilogue reads the bias in the output's type; the half logits of an f32 output never
  // carry a bias in the supported models, so that combination is refused rather than converted per call.
  LATTICE_CHECK(bias == nullptr || bias->dtype() == out.dtype(), "linear on ", ctx.device.str(), ": a ",
                dtype_name(bias ? bias->dtype() : out.dtype()), " bias with an ", dtype_name(out.dtype()),
                " output is not supported (the bias must have the output's dtype)");
  with_float_type("linear", x.dtype(), [&]<typename T>(std::type_identity<T>) {
    const int64_t m = x.dim(0), n = weight.dim(0), k = x.dim(1);
    if (out.dtype() == DType::f32)
      ctx.gemm->gemm_nt(ptr<const T>(x), ptr<const T>(weight), ptr<float>(out), m, n, k, ctx.stream,
                        bias ? ptr<const float>(*bias) : nullptr);
    else
      ctx.gemm->gemm_nt(ptr<const T>(x), ptr<const T>(weight), ptr<T>(out), m, n, k, ctx.stream,
                        bias ? ptr<const T>(*bias) : nullptr);
  });
}

void silu_mul(const ExecContext& ctx, const Tensor& gate_up, Tensor& out) {
  with_float_type("silu_mul", gate_up.dtype(), [&]<typename T>(std::type_identity<T>) {
    const int64_t inter = out.dim(1);
    gpu::silu_mul(ptr<const T>(gate_up), ptr<const T>(gate_up) + inter, ptr<T>(out), out.dim(0), inter, 2 * inter,
                  ctx.stream);
  });
}

void rope_write_kv(const ExecContext& ctx, const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                   const Tensor& slots, Tensor& k_cache, Tensor& v_cache, Tensor& q_out) {
  const kernels::PagedLayout layout{q_out.dim(1), k_cache.dim(2), q_out.dim(2), k_cache.dim(1)};
  with_float_type("rope_write_kv", qkv.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::rope_write_kv(ptr<const T>(qkv), ptr<const int32_t>(positions), ptr<const float>(inv_freq),
                       ptr<const int64_t>(slots), ptr<T>(k_cache), ptr<T>(v_cache), ptr<T>(q_out), qkv.dim(0), layout,
                       ctx.stream);
  });
}

void gather_rows(const ExecContext& ctx, const Tensor& x, const Tensor& index, Tensor& out) {
  with_float_type("gather_rows", x.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::embedding(ptr<const T>(x), 0, x.dim(0), ptr<const int32_t>(index), ptr<T>(out), index.dim(0), x.dim(1),
                   ctx.stream);
  });
}

void convert(const ExecContext& ctx, const Tensor& in, Tensor& out) {
  if (in.dtype() == out.dtype()) {
    CUDA_CHECK(cudaMemcpyAsync(out.raw(), in.raw(), in.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  with_float_type("convert", in.dtype(), [&]<typename TIn>(std::type_identity<TIn>) {
    with_float_type("convert", out.dtype(), [&]<typename TOut>(std::type_identity<TOut>) {
      if constexpr (!std::is_same_v<TIn, TOut>)
        gpu::convert(ptr<const TIn>(in), ptr<TOut>(out), in.numel(), ctx.stream);
    });
  });
}

}  // namespace lattice::ops::cuda_impl
