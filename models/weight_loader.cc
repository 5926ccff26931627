#include "models/weight_loader.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/convert.h"

namespace lattice {

void convert_to_f32(const void* src, DType dtype, float* dst, int64_t count, const std::string& name) {
  const size_t elem = dtype_size(dtype);
  std::vector<uint16_t> aligned;
  if (reinterpret_cast<uintptr_t>(src) % elem != 0 && dtype != DType::f32) {  // checkpoints need not be aligned
    aligned.resize(static_cast<size_t>(count));
    std::memcpy(aligned.data(), src, static_cast<size_t>(count) * elem);
    src = aligned.data();
  }
  switch (dtype) {
    case DType::f32:
      std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(float));
      return;
    case DType::bf16:
      kernels::cpu::bf16_to_f32(static_cast<const uint16_t*>(src), dst, count);
      return;
    case DType::f16:
      kernels::cpu::f16_to_f32(static_cast<const uint16_t*>(src), dst, count);
      return;
    default:
      LATTICE_THROW("weight '", name, "' has dtype ", dtype_name(dtype), "; weights must be F32, BF16 or F16");
  }
}

WeightLoader::WeightLoader(const Checkpoint& checkpoint, std::vector<WeightSpec> table, int64_t num_layers,
                           int64_t kv_heads, TensorParallelRank tp, const std::vector<WeightRef>& wanted,
                           Progress progress)
    : checkpoint_(checkpoint), table_(std::move(table)), kv_heads_(kv_heads), tp_(tp), progress_(std::move(progress)) {
  // Check the whole table up front so a bad checkpoint fails before any conversion work.
  for (const WeightSpec& s : table_) {
    for (int64_t layer = 0; layer < (s.per_layer ? num_layers : 1); ++layer) {
      const std::string name = weight_name(s, layer);
      LATTICE_CHECK(checkpoint_.has(name), "checkpoint is missing weight '", name, "'");
      const TensorInfo& info = checkpoint_.info(name);
      LATTICE_CHECK(info.shape == s.shape, checkpoint_.file_of(name), ": weight '", name, "' has shape ",
                    shape_str(info.shape), ", config.json expects ", shape_str(s.shape));
    }
  }
  for (const WeightRef& w : wanted) {
    const WeightSpec& s = spec(w.pattern);
    const std::string name = weight_name(s, w.layer);
    const auto shape = parallel::sliced_shape(s.shape, slice_of(s, name));
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    bytes_total_ += static_cast<size_t>(n) * dtype_size(checkpoint_.info(name).dtype);
  }
}

const WeightSpec& WeightLoader::spec(const std::string& pattern) const {
  for (const WeightSpec& s : table_)
    if (s.pattern == pattern) return s;
  LATTICE_THROW("weight '", pattern, "' is not in this architecture's table");
}

parallel::Slice WeightLoader::slice_of(const WeightSpec& spec, const std::string& name) const {
  return parallel::shard_slice(spec.split, spec.shape, tp_.rank, tp_.size, kv_heads_, name);
}

Tensor WeightLoader::load(const std::string& pattern, int64_t layer) {
  const WeightSpec& s = spec(pattern);
  const std::string name = weight_name(s, layer);
  const std::string where = checkpoint_.file_of(name) + ": " + name;
  const Tensor stored = checkpoint_.tensor(name);
  const parallel::Slice slice = slice_of(s, name);
  Tensor out = Tensor::empty(parallel::sliced_shape(s.shape, slice), DType::f32);
  const size_t elem = dtype_size(stored.dtype());
  const auto* src = static_cast<const char*>(stored.raw());
  if (slice.dim < 0) {
    convert_to_f32(src, stored.dtype(), out.data<float>(), out.numel(), where);
  } else if (slice.dim == 0) {  // a contiguous block of rows
    const int64_t row = stored.numel() / stored.dim(0);
    convert_to_f32(src + static_cast<size_t>(slice.begin * row) * elem, stored.dtype(), out.data<float>(),
                   out.numel(), where);
  } else {  // the same column range out of every row
    const int64_t rows = stored.dim(0), cols = stored.dim(1), width = slice.end - slice.begin;
    for (int64_t r = 0; r < rows; ++r)
      convert_to_f32(src + static_cast<size_t>(r * cols + slice.begin) * elem, stored.dtype(),
                     out.data<float>() + r * width, width, where);
  }
  bytes_done_ += static_cast<size_t>(out.numel()) * elem;
  if (progress_) progress_(bytes_done_, bytes_total_);
  return out;
}

}  // namespace lattice
