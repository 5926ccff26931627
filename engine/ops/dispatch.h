// Operand checks and the one device/dtype dispatch shared by the op dispatchers (engine/ops/*.cc). An op checks
// its operands here, then runs LATTICE_DISPATCH_OP with its CPU kernel call (kernels/cpu, f32) and its CUDA
// entry point (engine/ops/cuda_ops.h, compiled only with the CUDA backend); each error names the op.
#pragma once

#include <initializer_list>

#include "engine/core/tensor.h"
#include "engine/ops/exec_context.h"

namespace lattice::ops {

struct Operand {
  const char* name;
  const Tensor& tensor;
};

// "rms_norm: weight is on cpu, the op runs on cuda:0".
inline void require_device(const char* op, const ExecContext& ctx, std::initializer_list<Operand> operands) {
  for (const Operand& o : operands)
    LATTICE_CHECK(o.tensor.device() == ctx.device, op, ": ", o.name, " is on ", o.tensor.device().str(),
                  ", the op runs on ", ctx.device.str());
}

inline void require_rank(const char* op, const Operand& o, int64_t rank) {
  LATTICE_CHECK(o.tensor.rank() == rank, op, ": ", o.name, " must have rank ", rank, ", got ", o.tensor.describe());
}

// An index or metadata operand of a fixed dtype and rank.
inline void require_dtype(const char* op, const Operand& o, DType dtype, int64_t rank) {
  LATTICE_CHECK(o.tensor.dtype() == dtype && o.tensor.rank() == rank, op, ": ", o.name, " must be ",
                dtype_name(dtype), " of rank ", rank, ", got ", o.tensor.describe());
}

// All operands share the first one's dtype: "linear: weight is bf16, x is f32".
inline void require_same_dtype(const char* op, std::initializer_list<Operand> operands) {
  const Operand& first = *operands.begin();
  for (const Operand& o : operands)
    LATTICE_CHECK(o.tensor.dtype() == first.tensor.dtype(), op, ": ", o.name, " is ", dtype_name(o.tensor.dtype()),
                  ", ", first.name, " is ", dtype_name(first.tensor.dtype()));
}

// Whether the op runs on the CPU, whose kernels are f32 only: "bf16 rms_norm is not available on cpu".
inline bool runs_on_cpu(const char* op, const ExecContext& ctx, DType dtype) {
  if (!ctx.device.is_cpu()) return false;
  LATTICE_CHECK(dtype == DType::f32, dtype_name(dtype), " ", op,
                " is not available on cpu (the CPU backend computes in f32)");
  return true;
}

[[noreturn]] inline void no_cuda_backend(const char* op, const ExecContext& ctx) {
  LATTICE_THROW(op, " on ", ctx.device.str(), ": this build has no CUDA backend (configure with LATTICE_WITH_CUDA=ON)");
}

}  // namespace lattice::ops

// Runs `cpu_call` when ctx is the CPU (dtype must be f32), else `cuda_call`; without the CUDA backend a device
// context is an error naming the op. The calls are statements; the CUDA one is not compiled without CUDA.
#ifdef LATTICE_HAVE_CUDA
#define LATTICE_DISPATCH_OP(op, ctx, dtype, cpu_call, cuda_call)   \
  do {                                                             \
    if (::lattice::ops::runs_on_cpu(op, ctx, dtype)) {             \
      cpu_call;                                                    \
    } else {                                                       \
      cuda_call;                                                   \
    }                                                              \
  } while (0)
#else
#define LATTICE_DISPATCH_OP(op, ctx, dtype, cpu_call, cuda_call)   \
  do {                                                             \
    if (::lattice::ops::runs_on_cpu(op, ctx, dtype)) {             \
      cpu_call;                                                    \
    } else {                                                       \
      ::lattice::ops::no_cuda_backend(op, ctx);                    \
    }                                                              \
  } while (0)
#endif
