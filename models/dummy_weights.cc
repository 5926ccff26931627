#include "models/dummy_weights.h"

#include <cmath>

#ifdef LATTICE_HAVE_CUDA
#include "kernels/cuda/fill_random.cuh"
#endif

namespace lattice {

namespace {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void check_dtype(DType dtype, const std::string& name) {
  LATTICE_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16, "dummy weight '", name,
                "' cannot be made as ", dtype_name(dtype), " (f32, bf16 or f16 only)");
}

}  // namespace

DummyWeights::DummyWeights(DType dtype, uint64_t seed) : dtype_(dtype), seed_(seed) { check_dtype(dtype, "*"); }

kernels::HashFill DummyWeights::fill_of(const std::string& name, const std::vector<int64_t>& shape,
                                        const SliceLayout& layout) const {
  kernels::HashFill f;
  f.seed = kernels::splitmix64_mix(seed_ ^ fnv1a64(name));
  if (shape.size() == 1 && name.find("norm") != std::string::npos) {
    f.offset = 1.0f;
    f.scale = 0.1f;
  } else {
    f.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(shape.back())));
  }
  f.base = layout.base;
  f.width = layout.width;
  f.stride = layout.stride;
  return f;
}

void DummyWeights::read(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout,
                        int64_t first, int64_t count, DType dtype, void* dst) const {
  check_dtype(dtype, name);
  const kernels::HashFill f = fill_of(name, shape, layout);
  if (dtype == DType::f32) kernels::cpu::fill_hash_f32(static_cast<float*>(dst), first, count, f);
  if (dtype == DType::bf16) kernels::cpu::fill_hash_bf16(static_cast<uint16_t*>(dst), first, count, f);
  if (dtype == DType::f16) kernels::cpu::fill_hash_f16(static_cast<uint16_t*>(dst), first, count, f);
}

bool DummyWeights::fill_device(const std::string& name, const std::vector<int64_t>& shape,
                               const SliceLayout& layout, DType dtype, void* dst, CUstream_st* stream) const {
#ifdef LATTICE_HAVE_CUDA
  check_dtype(dtype, name);
  const kernels::HashFill f = fill_of(name, shape, layout);
  if (dtype == DType::f32) kernels::cuda::fill_hash(static_cast<float*>(dst), layout.count, f, stream);
  if (dtype == DType::bf16) kernels::cuda::fill_hash(static_cast<__nv_bfloat16*>(dst), layout.count, f, stream);
  if (dtype == DType::f16) kernels::cuda::fill_hash(static_cast<__half*>(dst), layout.count, f, stream);
  return true;
#else
  return false;  // no device path in a CPU-only build (a cuda tensor cannot exist there either)
#endif
}

}  // namespace lattice
