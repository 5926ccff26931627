// Reads the weights named in an architecture's table out of a checkpoint, checking each one's presence,
// shape and dtype, and converting bf16/f16 to the f32 the CPU backend computes in.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/weights/safetensors.h"
#include "models/weight_table.h"

namespace lattice {

class WeightLoader {
 public:
  // progress(bytes_done, bytes_total) is called after each tensor; may be empty.
  using Progress = std::function<void(size_t, size_t)>;
  WeightLoader(const Checkpoint& checkpoint, std::vector<WeightSpec> table, int64_t num_layers, Progress progress);

  // The weight `spec_pattern` (for `layer`, when per-layer) as an owned f32 tensor.
  Tensor load(const std::string& spec_pattern, int64_t layer = -1);

 private:
  const WeightSpec& spec(const std::string& pattern) const;

  const Checkpoint& checkpoint_;
  std::vector<WeightSpec> table_;
  Progress progress_;
  size_t bytes_total_ = 0;
  size_t bytes_done_ = 0;
};

// An owned f32 copy of a checkpoint tensor in f32, bf16 or f16.
Tensor to_f32(const Tensor& stored, const std::string& name);

}  // namespace lattice
