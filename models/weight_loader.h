// Reads the weights named in an architecture's table out of a weight source (a checkpoint, or generated dummy
// weights): checks each one's presence and shape up front, then cuts this tensor-parallel rank's slice
// straight out of the source (strided for column ranges, so no rank materialises a weight it does not own)
// into a tensor of the requested dtype on the requested device. A checkpoint's own type is copied unconverted
// (bf16 stays bf16); another type is converted on the host. GPU tensors are filled through one reused pinned
// staging buffer (engine/weights/device_upload.h), or generated in place for dummy weights.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/weights/safetensors.h"
#include "models/weight_source.h"
#include "models/weight_table.h"

namespace lattice {

class DeviceUploader;

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
  // progress(bytes_done, bytes_total) is called after each tensor; may be empty. Bytes count the source's
  // stored type.
  using Progress = std::function<void(size_t, size_t)>;
  // Checks every weight of the table for all `num_layers` layers, that the source stores no tensor the table
  // leaves unused (whatever layers this rank loads), and that each one in `wanted` can be split over tp.size
  // ranks; `kv_heads` sizes the kv_heads split rule. `wanted` sizes the progress total
  // (weights this rank does not hold count nothing). `source` must outlive the loader.
  WeightLoader(const WeightSource& source, std::vector<WeightSpec> table, int64_t num_layers, int64_t kv_heads,
               TensorParallelRank tp, const std::vector<WeightRef>& wanted, Progress progress);
  // The same over a checkpoint's tensors (through CheckpointWeights).
  WeightLoader(const Checkpoint& checkpoint, std::vector<WeightSpec> table, int64_t num_layers, int64_t kv_heads,
               TensorParallelRank tp, const std::vector<WeightRef>& wanted, Progress progress);
  ~WeightLoader();

  // Whether this rank holds the weight at all: false for a first_rank weight (o_proj's bias) on TP ranks
  // other than 0, true otherwise.
  bool holds(const std::string& pattern) const;
  // This rank's slice of a weight as `dtype` (f32, bf16 or f16) on `device`; an undefined Tensor when the rank
  // does not hold it (see holds()). A vocabulary shard is ceil(vocab / tp) rows, zero past the vocabulary.
  // Returns once the data is in place.
  Tensor load(const std::string& pattern, int64_t layer = -1, DType dtype = DType::f32,
              Device device = Device::cpu());
  // Several weights' slices stacked along dimension 0 into one tensor, each cut by its own split rule:
  // {q_proj, k_proj, v_proj} -> wqkv [(heads + 2 * kv_heads) / tp * head_dim, hidden], or
  // [(heads / tp + 2) * head_dim, hidden] when kv_heads < tp (each rank then holds the one KV head its query
  // heads read); {gate_proj, up_proj} -> w_gate_up [2 * inter / tp, hidden]; 1-D biases the same way. Every part must be held and split along dimension 0 (or not at all), with equal
  // trailing dimensions.
  Tensor load_fused(const std::vector<std::string>& patterns, int64_t layer, DType dtype, Device device);
  // Bytes (of the stored type) cut out of the source so far.
  size_t bytes_read() const { return bytes_done_; }

 private:
  WeightLoader(std::unique_ptr<WeightSource> owned, const WeightSource* source, std::vector<WeightSpec> table,
               int64_t num_layers, int64_t kv_heads, TensorParallelRank tp, const std::vector<WeightRef>& wanted,
               Progress progress);
  const WeightSpec& spec(const std::string& pattern) const;
  std::string name_of(const WeightSpec& spec, int64_t layer) const;
  parallel::Slice slice_of(const WeightSpec& spec, const std::string& name) const;
  // Writes the slice of weight `name` into `dst` (its sliced shape, any dtype and device) and reports progress.
  void write_slice(const WeightSpec& spec, const std::string& name, const parallel::Slice& slice, const Tensor& dst);

  std::unique_ptr<WeightSource> owned_source_;
  const WeightSource& source_;
  std::vector<WeightSpec> table_;
  int64_t num_layers_;
  int64_t kv_heads_;
  TensorParallelRank tp_;
  Progress progress_;
  size_t bytes_total_ = 0;
  size_t bytes_done_ = 0;
#ifdef LATTICE_HAVE_CUDA
  std::unique_ptr<DeviceUploader> uploader_;  // made at the first load onto a GPU
#endif
};

}  // namespace lattice
