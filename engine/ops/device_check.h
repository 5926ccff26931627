// Shared operand checks for op dispatchers.
#pragma once

#include "engine/core/tensor.h"

namespace lattice::ops {

// Every op here has a CPU f32 implementation only until the CUDA backend lands; say so by name.
inline void require_cpu_f32(const char* op, const char* operand, const Tensor& t) {
  LATTICE_CHECK(t.device().is_cpu(), op, " is not available on ", t.device().str(), " (", operand, ")");
  LATTICE_CHECK(t.dtype() == DType::f32, dtype_name(t.dtype()), " ", op, " is not available on cpu (", operand,
                " must be f32)");
}

inline void require_shape(const char* op, const char* operand, const Tensor& t, int64_t rank) {
  LATTICE_CHECK(t.rank() == rank, op, ": ", operand, " must have rank ", rank, ", got ", t.describe());
}

}  // namespace lattice::ops
