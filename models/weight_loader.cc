#include "models/weight_loader.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <set>

#ifdef LATTICE_HAVE_CUDA
#include "engine/weights/device_upload.h"
#endif

namespace lattice {

namespace {

#ifdef LATTICE_HAVE_CUDA
constexpr size_t kStagingBytes = size_t{64} << 20;  // two 32 MiB halves of pinned memory per loader
#endif

void check_load_dtype(DType dtype, const std::string& name) {
  LATTICE_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16, "weight '", name,
                "' cannot be loaded as ", dtype_name(dtype), " (f32, bf16 or f16 only)");
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

// Orders names with their digit runs compared as numbers: layers.2 before layers.10.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      const size_t a_end = a.find_first_not_of("0123456789", i), b_end = b.find_first_not_of("0123456789", j);
      const std::string x = a.substr(i, a_end - i), y = b.substr(j, b_end - j);
      if (x != y) return x.size() != y.size() ? x.size() < y.size() : x < y;
      i = a_end == std::string::npos ? a.size() : a_end;
      j = b_end == std::string::npos ? b.size() : b_end;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// Refuses a source that stores tensors the table does not name for any of `num_layers` layers (a config with
// fewer layers than the checkpoint would otherwise run a partial model), naming the first few.
void check_all_used(const WeightSource& source, const std::vector<WeightSpec>& table, int64_t num_layers) {
  std::set<std::string> expected;
  for (const WeightSpec& s : table)
    for (int64_t layer = 0; layer < (s.per_layer ? num_layers : 1); ++layer) expected.insert(weight_name(s, layer));
  std::vector<std::string> unused;
  for (const std::string& name : source.stored_names())
    if (!expected.count(name) && !ignorable_weight(name)) unused.push_back(name);
  if (unused.empty()) return;
  std::sort(unused.begin(), unused.end(), natural_less);
  constexpr size_t kNamed = 4;
  std::string names;
  for (size_t i = 0; i < std::min(kNamed, unused.size()); ++i) names += (i ? ", " : "") + unused[i];
  LATTICE_THROW("checkpoint holds tensors not used by this config (num_hidden_layers ", num_layers, "): ", names,
                unused.size() > kNamed ? ", ..." : "", " (", unused.size(), " tensors)");
}

}  // namespace

WeightLoader::WeightLoader(const WeightSource& source, std::vector<WeightSpec> table, int64_t num_layers,
                           int64_t kv_heads, TensorParallelRank tp, const std::vector<WeightRef>& wanted,
                           Progress progress)
    : WeightLoader(nullptr, &source, std::move(table), num_layers, kv_heads, tp, wanted, std::move(progress)) {}

WeightLoader::WeightLoader(const Checkpoint& checkpoint, std::vector<WeightSpec> table, int64_t num_layers,
                           int64_t kv_heads, TensorParallelRank tp, const std::vector<WeightRef>& wanted,
                           Progress progress)
    : WeightLoader(std::make_unique<CheckpointWeights>(checkpoint), nullptr, std::move(table), num_layers, kv_heads,
                   tp, wanted, std::move(progress)) {}

WeightLoader::WeightLoader(std::unique_ptr<WeightSource> owned, const WeightSource* source,
                           std::vector<WeightSpec> table, int64_t num_layers, int64_t kv_heads, TensorParallelRank tp,
                           const std::vector<WeightRef>& wanted, Progress progress)
    : owned_source_(std::move(owned)),
      source_(owned_source_ ? *owned_source_ : *source),
      table_(std::move(table)),
      num_layers_(num_layers),
      kv_heads_(kv_heads),
      tp_(tp),
      progress_(std::move(progress)) {
  // Check the whole table up front so a bad checkpoint fails before any copying.
  for (const WeightSpec& s : table_)
    for (int64_t layer = 0; layer < (s.per_layer ? num_layers : 1); ++layer) source_.check(weight_name(s, layer), s.shape);
  check_all_used(source_, table_, num_layers);
  for (const WeightRef& w : wanted) {
    const WeightSpec& s = spec(w.pattern);
    const std::string name = name_of(s, w.layer);
    const auto shape = parallel::sliced_shape(s.shape, slice_of(s, name));
    bytes_total_ += static_cast<size_t>(numel_of(shape)) * dtype_size(source_.stored_dtype(name));
  }
}

WeightLoader::~WeightLoader() = default;

const WeightSpec& WeightLoader::spec(const std::string& pattern) const {
  for (const WeightSpec& s : table_)
    if (s.pattern == pattern) return s;
  LATTICE_THROW("weight '", pattern, "' is not in this architecture's table");
}

std::string WeightLoader::name_of(const WeightSpec& spec, int64_t layer) const {
  if (spec.per_layer)
    LATTICE_CHECK(0 <= layer && layer < num_layers_, "weight '", spec.pattern, "' needs a layer in [0, ",
                  num_layers_, "), got ", layer);
  return weight_name(spec, layer);
}

parallel::Slice WeightLoader::slice_of(const WeightSpec& spec, const std::string& name) const {
  return parallel::shard_slice(spec.split, spec.shape, tp_.rank, tp_.size, kv_heads_, name);
}

bool WeightLoader::holds(const std::string& pattern) const {
  const WeightSpec& s = spec(pattern);
  return slice_of(s, s.pattern).held;
}

Tensor WeightLoader::load(const std::string& pattern, int64_t layer, DType dtype, Device device) {
  const WeightSpec& s = spec(pattern);
  const std::string name = name_of(s, layer);
  const parallel::Slice slice = slice_of(s, name);
  if (!slice.held) return {};
  check_load_dtype(dtype, name);
  if (slice.padding == 0) {
    Tensor out = Tensor::empty(parallel::sliced_shape(s.shape, slice), dtype, device);
    write_slice(s, name, slice, out);
    return out;
  }
  // A padded vocabulary shard: the rows read, then zeros (the split cuts dimension 0).
  Tensor out = Tensor::zeros(parallel::held_shape(s.shape, slice), dtype, device);
  if (slice.end > slice.begin) write_slice(s, name, slice, out.rows(0, slice.end - slice.begin));
  return out;
}

Tensor WeightLoader::load_fused(const std::vector<std::string>& patterns, int64_t layer, DType dtype,
                                Device device) {
  LATTICE_CHECK(!patterns.empty(), "load_fused needs at least one weight");
  struct Part {
    const WeightSpec* spec;
    std::string name;
    parallel::Slice slice;
    std::vector<int64_t> shape;
  };
  std::vector<Part> parts;
  int64_t rows = 0;
  for (const std::string& pattern : patterns) {
    const WeightSpec& s = spec(pattern);
    Part p{&s, name_of(s, layer), {}, {}};
    p.slice = slice_of(s, p.name);
    p.shape = parallel::sliced_shape(s.shape, p.slice);
    LATTICE_CHECK(p.slice.held, "cannot fuse '", p.name, "': TP rank ", tp_.rank, " does not hold it");
    LATTICE_CHECK(p.slice.padding == 0, "cannot fuse '", p.name, "': its ", parallel::split_rule_name(s.split),
                  " split pads it");
    LATTICE_CHECK(p.slice.dim <= 0, "cannot fuse '", p.name, "' along dimension 0: its ",
                  parallel::split_rule_name(s.split), " split cuts dimension ", p.slice.dim);
    if (!parts.empty()) {
      const std::vector<int64_t>& first = parts.front().shape;
      LATTICE_CHECK(std::equal(p.shape.begin() + 1, p.shape.end(), first.begin() + 1, first.end()), "cannot fuse '",
                    p.name, "' ", shape_str(p.shape), " with '", parts.front().name, "' ", shape_str(first),
                    ": the dimensions after the first differ");
    }
    rows += p.shape.at(0);
    parts.push_back(std::move(p));
  }
  check_load_dtype(dtype, parts.front().name);
  std::vector<int64_t> shape = parts.front().shape;
  shape[0] = rows;
  Tensor out = Tensor::empty(shape, dtype, device);
  int64_t at = 0;
  for (const Part& p : parts) {
    write_slice(*p.spec, p.name, p.slice, out.rows(at, at + p.shape[0]));
    at += p.shape[0];
  }
  return out;
}

void WeightLoader::write_slice(const WeightSpec& spec, const std::string& name, const parallel::Slice& slice,
                               const Tensor& dst) {
  const SliceLayout layout = SliceLayout::of(spec.shape, slice);
  if (dst.device().is_cpu()) {
    source_.read(name, spec.shape, layout, 0, layout.count, dst.dtype(), dst.raw());
  } else {
#ifdef LATTICE_HAVE_CUDA
    if (!uploader_ || uploader_->device() != dst.device().index)
      uploader_ = std::make_unique<DeviceUploader>(dst.device().index, kStagingBytes);
    if (source_.fill_device(name, spec.shape, layout, dst.dtype(), dst.raw(), uploader_->stream())) {
      uploader_->synchronize();
    } else {
      const size_t elem = dtype_size(dst.dtype());
      uploader_->upload(dst.raw(), dst.nbytes(), elem, [&](void* host, size_t offset, size_t bytes) {
        source_.read(name, spec.shape, layout, static_cast<int64_t>(offset / elem), static_cast<int64_t>(bytes / elem),
                     dst.dtype(), host);
      });
    }
#else
    LATTICE_THROW("cannot load '", name, "' onto ", dst.device().str(), ": this build has no CUDA backend");
#endif
  }
  bytes_done_ += static_cast<size_t>(layout.count) * dtype_size(source_.stored_dtype(name));
  if (progress_) progress_(bytes_done_, bytes_total_);
}

}  // namespace lattice
