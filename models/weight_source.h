// Where weight values come from: a safetensors checkpoint (CheckpointWeights, below) or generated values
// (DummyWeights, models/dummy_weights.h). WeightLoader cuts each tensor-parallel rank's slice through this
// interface, so loading works the same with either source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/weights/safetensors.h"
#include "parallel/sharding.h"

struct CUstream_st;  // cudaStream_t, without the CUDA headers

namespace lattice {

// Where a rank's slice lies in the whole tensor (row-major): slice element j is element
// base + (j / width) * stride + j % width of the whole tensor, for j < count.
struct SliceLayout {
  int64_t base = 0;
  int64_t width = 1;
  int64_t stride = 1;
  int64_t count = 0;

  static SliceLayout of(const std::vector<int64_t>& shape, const parallel::Slice& slice);
  int64_t whole_index(int64_t j) const { return base + (j / width) * stride + j % width; }
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  // Throws, naming the weight and both shapes, when `name` is missing or is not of `shape`.
  virtual void check(const std::string& name, const std::vector<int64_t>& shape) const = 0;
  // The element type `name` is stored in: loading it as this type copies it unconverted.
  virtual DType stored_dtype(const std::string& name) const = 0;
  // Writes slice elements [first, first + count) of weight `name` (whole shape `shape`) into host memory `dst`
  // as `dtype` (f32, bf16 or f16).
  virtual void read(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout,
                    int64_t first, int64_t count, DType dtype, void* dst) const = 0;
  // Every tensor name the source stores, to find those a config leaves unused; empty for a source that makes
  // any weight it is asked for (generated weights).
  virtual std::vector<std::string> stored_names() const { return {}; }
  // Writes the whole slice into device memory `dst`, enqueued on `stream`, when this source can make it there
  // (generated weights) and returns true; false tells the loader to stage read() chunks through host memory.
  virtual bool fill_device(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout,
                           DType dtype, void* dst, CUstream_st* stream) const {
    return false;
  }
};

// The tensors of a safetensors checkpoint, read straight out of the map (which must outlive this object).
class CheckpointWeights : public WeightSource {
 public:
  explicit CheckpointWeights(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  void check(const std::string& name, const std::vector<int64_t>& shape) const override;
  DType stored_dtype(const std::string& name) const override;
  std::vector<std::string> stored_names() const override { return checkpoint_.names(); }
  void read(const std::string& name, const std::vector<int64_t>& shape, const SliceLayout& layout, int64_t first,
            int64_t count, DType dtype, void* dst) const override;

 private:
  const Checkpoint& checkpoint_;
};

// The half-precision type a checkpoint stores its weights in (for --dtype auto): bf16 or f16, whichever holds
// more of its bytes; f32 when it stores neither.
DType checkpoint_half_type(const Checkpoint& checkpoint);

// Converts `count` elements from `from` to `to` (each f32, bf16 or f16; half types rounded to nearest even);
// `src` need not be aligned. A plain copy when the types are equal. `name` is the weight, for errors.
void convert_elements(const void* src, DType from, void* dst, DType to, int64_t count, const std::string& name);

// f32 copies of `count` elements of f32, bf16 or f16 data.
void convert_to_f32(const void* src, DType dtype, float* dst, int64_t count, const std::string& name);

}  // namespace lattice
