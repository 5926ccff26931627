// Reads the weights named in an architecture's table out of a checkpoint: checks each one's presence and
// shape, cuts this tensor-parallel rank's slice straight out of the mmap'd file (strided for column
// ranges, so no rank materialises a weight it does not own), and converts bf16/f16 to the f32 the CPU
// backend computes in.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/weights/safetensors.h"
#include "models/weight_table.h"

namespace lattice {

struct TensorParallelRank {
  int rank = 0;
  int size = 1;
};

struct WeightRef {
  std::string pattern;
  int64_t layer = -1;
};

class WeightLoader {
 public:
  // progress(bytes_done, bytes_total) is called after each tensor; may be empty.
  using Progress = std::function<void(size_t, size_t)>;
  // Checks every weight of the table for all `num_layers` layers, and that each one in `wanted` can be
  // split over tp.size ranks; `kv_heads` sizes the kv_heads split rule.
  WeightLoader(const Checkpoint& checkpoint, std::vector<WeightSpec> table, int64_t num_layers, int64_t kv_heads,
               TensorParallelRank tp, const std::vector<WeightRef>& wanted, Progress progress);

  // This rank's slice of a weight, as an owned f32 tensor.
  Tensor load(const std::string& pattern, int64_t layer = -1);
  // Bytes copied out of the checkpoint so far.
  size_t bytes_read() const { return bytes_done_; }

 private:
  const WeightSpec& spec(const std::string& pattern) const;
  parallel::Slice slice_of(const WeightSpec& spec, const std::string& name) const;

  const Checkpoint& checkpoint_;
  std::vector<WeightSpec> table_;
  int64_t kv_heads_;
  TensorParallelRank tp_;
  Progress progress_;
  size_t bytes_total_ = 0;
  size_t bytes_done_ = 0;
};

// f32 copies of `count` elements of f32, bf16 or f16 data.
void convert_to_f32(const void* src, DType dtype, float* dst, int64_t count, const std::string& name);

}  // namespace lattice
