// Generated weights, for running a real model's shape (Llama-3-8B for the benchmark) with only its config.json:
// no checkpoint is read and nothing of the model's size is written or held on the host. Element i of weight
// NAME is the counter-based hash value of kernels/cpu/fill_random.h with
//   seed   = splitmix64_mix(seed_ ^ fnv1a64(NAME))   (FNV-1a over the name's bytes),
//   offset = 1, scale = 0.1              for a 1-D weight whose name contains "norm" (gains near 1),
//   offset = 0, scale = 1 / sqrt(fan_in) otherwise, fan_in = the last dimension (uniform, unit-size outputs),
// where i indexes the whole tensor, so every tensor-parallel split sees slices of the same model. On a GPU the
// values are generated in device memory (kernels/cuda/fill_random.cuh), on the CPU on the host; both compute
// the same f32 and round it the same way to the dtype asked for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/fill_random.h"
#include "models/weight_source.h"

namespace lattice {

class DummyWeights : public WeightSource {
 public:
  // `dtype` plays the checkpoint's stored type: loading as it is "unconverted" (and sizes progress bytes).
  explicit DummyWeights(DType dtype = DType::bf16, uint64_t seed = 0);

  DType dtype() const { return dtype_; }
  // The fill of a slice of weight `name` of `shape`.
  kernels::HashFill fill_of(const std::string& name, const std::vector<int64_t>& shape,
                            const SliceLayout& layout) const;

  void check(const std::string& name, const std::vector<int64_t>& shape) const override {}
  DType stored_dtype(const std::string& name) const override { return dtype_; }
  void read(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout, int64_t first,
            int64_t count, DType dtype, void* dst) const override;
  bool fill_device(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout,
                   DType dtype, void* dst, CUstream_st* stream) const override;

 private:
  DType dtype_;
  uint64_t seed_;
};

}  // namespace lattice
