#include "models/weight_loader.h"

#include <cstring>

#include "kernels/cpu/convert.h"

namespace lattice {

Tensor to_f32(const Tensor& stored, const std::string& name) {
  Tensor out = Tensor::empty(stored.shape(), DType::f32);
  const int64_t n = stored.numel();
  switch (stored.dtype()) {
    case DType::f32:
      std::memcpy(out.raw(), stored.raw(), stored.nbytes());
      break;
    case DType::bf16:
      kernels::cpu::bf16_to_f32(static_cast<const uint16_t*>(stored.raw()), out.data<float>(), n);
      break;
    case DType::f16:
      kernels::cpu::f16_to_f32(static_cast<const uint16_t*>(stored.raw()), out.data<float>(), n);
      break;
    default:
      LATTICE_THROW("weight '", name, "' has dtype ", dtype_name(stored.dtype()), "; weights must be F32, BF16 or F16");
  }
  return out;
}

WeightLoader::WeightLoader(const Checkpoint& checkpoint, std::vector<WeightSpec> table, int64_t num_layers,
                           Progress progress)
    : checkpoint_(checkpoint), table_(std::move(table)), progress_(std::move(progress)) {
  // Check the whole table up front so a bad checkpoint fails before any conversion work.
  for (const WeightSpec& s : table_) {
    for (int64_t layer = 0; layer < (s.per_layer ? num_layers : 1); ++layer) {
      const std::string name = weight_name(s, layer);
      LATTICE_CHECK(checkpoint_.has(name), "checkpoint is missing weight '", name, "'");
      const TensorInfo& info = checkpoint_.info(name);
      LATTICE_CHECK(info.shape == s.shape, checkpoint_.file_of(name), ": weight '", name, "' has shape ",
                    shape_str(info.shape), ", config.json expects ", shape_str(s.shape));
      bytes_total_ += info.end - info.begin;
    }
  }
}

const WeightSpec& WeightLoader::spec(const std::string& pattern) const {
  for (const WeightSpec& s : table_)
    if (s.pattern == pattern) return s;
  LATTICE_THROW("weight '", pattern, "' is not in this architecture's table");
}

Tensor WeightLoader::load(const std::string& pattern, int64_t layer) {
  const std::string name = weight_name(spec(pattern), layer);
  Tensor stored = checkpoint_.tensor(name);
  Tensor out = to_f32(stored, checkpoint_.file_of(name) + ": " + name);
  bytes_done_ += stored.nbytes();
  if (progress_) progress_(bytes_done_, bytes_total_);
  return out;
}

}  // namespace lattice
