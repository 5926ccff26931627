// The dtype half of the CUDA dispatch (engine/ops/*_cuda.cc only): calls f(std::type_identity<T>{}) with the
// device element type of a float dtype, or names the op in the error for any other dtype.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "engine/core/tensor.h"

namespace lattice::ops::cuda_impl {

template <typename F>
void with_float_type(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(std::type_identity<float>{});
    case DType::f16: return f(std::type_identity<__half>{});
    case DType::bf16: return f(std::type_identity<__nv_bfloat16>{});
    default: LATTICE_THROW(dtype_name(dtype), " ", op, " is not available on cuda");
  }
}

template <typename T> T* ptr(const Tensor& t) { return static_cast<T*>(t.raw()); }

}  // namespace lattice::ops::cuda_impl
