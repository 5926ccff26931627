#include "models/weight_source.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "engine/weights/nonfinite_scan.h"
#include "kernels/cpu/convert.h"

namespace lattice {

SliceLayout SliceLayout::of(const std::vector<int64_t>& shape, const parallel::Slice& slice) {
  if (!slice.held) return {0, 1, 1, 0};
  int64_t outer = 1, inner = 1;  // elements before and after slice.dim (all of them for the whole tensor)
  for (size_t d = 0; d < shape.size(); ++d) {
    if (static_cast<int>(d) < slice.dim) outer *= shape[d];
    if (static_cast<int>(d) > slice.dim) inner *= shape[d];
  }
  if (slice.dim < 0) return {0, std::max<int64_t>(inner, 1), std::max<int64_t>(inner, 1), inner};
  const int64_t width = (slice.end - slice.begin) * inner;
  return {slice.begin * inner, std::max<int64_t>(width, 1), shape.at(slice.dim) * inner, outer * width};
}

namespace {

bool is_float(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

}  // namespace

void convert_elements(const void* src, DType from, void* dst, DType to, int64_t count, const std::string& name) {
  LATTICE_CHECK(is_float(from), "weight '", name, "' has dtype ", dtype_name(from),
                "; weights must be F32, BF16 or F16");
  LATTICE_CHECK(is_float(to), "weight '", name, "' cannot be loaded as ", dtype_name(to),
                " (f32, bf16 or f16 only)");
  if (from == to) {
    std::memcpy(dst, src, static_cast<size_t>(count) * dtype_size(from));
    return;
  }
  // Through f32, a block at a time: checkpoints need not be aligned, so each block is copied out first.
  constexpr int64_t kBlock = 1024;
  alignas(64) unsigned char in[kBlock * sizeof(float)];
  alignas(64) float f[kBlock];
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  for (int64_t at = 0; at < count; at += kBlock) {
    const int64_t n = std::min(kBlock, count - at);
    std::memcpy(in, s + static_cast<size_t>(at) * dtype_size(from), static_cast<size_t>(n) * dtype_size(from));
    const auto* half = reinterpret_cast<const uint16_t*>(in);
    if (from == DType::bf16) kernels::cpu::bf16_to_f32(half, f, n);
    if (from == DType::f16) kernels::cpu::f16_to_f32(half, f, n);
    if (from == DType::f32) std::memcpy(f, in, static_cast<size_t>(n) * sizeof(float));
    unsigned char* out = d + static_cast<size_t>(at) * dtype_size(to);
    if (to == DType::f32) {
      std::memcpy(out, f, static_cast<size_t>(n) * sizeof(float));
      continue;
    }
    uint16_t bits[kBlock];
    for (int64_t i = 0; i < n; ++i)
      bits[i] = to == DType::bf16 ? kernels::cpu::f32_to_bf16(f[i]) : kernels::cpu::f32_to_f16(f[i]);
    std::memcpy(out, bits, static_cast<size_t>(n) * sizeof(uint16_t));
  }
}

void convert_to_f32(const void* src, DType dtype, float* dst, int64_t count, const std::string& name) {
  convert_elements(src, dtype, dst, DType::f32, count, name);
}

void CheckpointWeights::check(const std::string& name, const std::vector<int64_t>& shape) const {
  LATTICE_CHECK(checkpoint_.has(name), "checkpoint is missing weight '", name, "'");
  const TensorInfo& info = checkpoint_.info(name);
  LATTICE_CHECK(info.shape == shape, checkpoint_.file_of(name), ": weight '", name, "' has shape ",
                shape_str(info.shape), ", config.json expects ", shape_str(shape));
}

DType CheckpointWeights::stored_dtype(const std::string& name) const { return checkpoint_.info(name).dtype; }

namespace {

// "[i, j, ...]": the position of flat element `index` in a row-major tensor of `shape`.
std::string index_str(int64_t index, const std::vector<int64_t>& shape) {
  std::vector<int64_t> at(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    at[d] = shape[d] > 0 ? index % shape[d] : 0;
    index = shape[d] > 0 ? index / shape[d] : 0;
  }
  return shape_str(at);
}

}  // namespace

void CheckpointWeights::read(const std::string& name, const std::vector<int64_t>& /*shape*/,
                             const SliceLayout& layout, int64_t first, int64_t count, DType dtype,
                             void* dst) const {
  const TensorInfo& info = checkpoint_.info(name);
  const auto* src = static_cast<const char*>(checkpoint_.tensor(name).raw());
  const size_t in_elem = dtype_size(info.dtype), out_elem = dtype_size(dtype);
  const std::string where = checkpoint_.file_of(name) + ": " + name;
  auto* out = static_cast<char*>(dst);
  // Contiguous runs of the whole tensor, at most kScanBlock elements each, so each run's output is scanned for
  // NaN/inf while it is still in cache: the scan adds no pass over memory.
  constexpr int64_t kScanBlock = 16384;
  for (int64_t j = first; j < first + count;) {
    const int64_t run = std::min({layout.width - j % layout.width, first + count - j, kScanBlock});
    const char* from = src + static_cast<size_t>(layout.whole_index(j)) * in_elem;
    char* to = out + static_cast<size_t>(j - first) * out_elem;
    convert_elements(from, info.dtype, to, dtype, run, where);
    if (const int64_t bad = first_nonfinite(to, dtype, run); bad >= 0) {
      const int64_t element = layout.whole_index(j + bad);
      const std::string at = "element " + std::to_string(element) + " (index " + index_str(element, info.shape) +
                             " of " + shape_str(info.shape) + ")";
      const char* stored = from + static_cast<size_t>(bad) * in_elem;
      LATTICE_CHECK(first_nonfinite(stored, info.dtype, 1) < 0, checkpoint_.file_of(name), ": weight '", name,
                    "' holds ", nonfinite_kind(stored, info.dtype, 0), " at ", at,
                    "; the checkpoint is corrupt or was saved after a diverged update");
      float value = 0;
      convert_to_f32(stored, info.dtype, &value, 1, where);
      LATTICE_THROW(checkpoint_.file_of(name), ": weight '", name, "' ", at, " is ", value, ", past the range of ",
                    dtype_name(dtype), ", which it is loaded as; load the model as ", dtype_name(info.dtype),
                    " (--dtype ", dtype_name(info.dtype), ")");
    }
    j += run;
  }
}

DType checkpoint_half_type(const Checkpoint& checkpoint) {
  std::map<DType, size_t> bytes;
  for (const std::string& name : checkpoint.names()) {
    const TensorInfo& info = checkpoint.info(name);
    bytes[info.dtype] += info.end - info.begin;
  }
  if (bytes[DType::bf16] == 0 && bytes[DType::f16] == 0) return DType::f32;
  return bytes[DType::bf16] >= bytes[DType::f16] ? DType::bf16 : DType::f16;
}

}  // namespace lattice
