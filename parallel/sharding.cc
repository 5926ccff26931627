#include "parallel/sharding.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice::parallel {

const char* split_rule_name(SplitRule rule) {
  switch (rule) {
    case SplitRule::replicated: return "replicated";
    case SplitRule::column: return "column";
    case SplitRule::kv_heads: return "kv_heads";
    case SplitRule::row: return "row";
    case SplitRule::vocab: return "vocab";
    case SplitRule::first_rank: return "first_rank";
  }
  return "unknown";
}

namespace {

Slice even(int dim, int64_t extent, int tp_rank, int tp, const std::string& name, const char* what) {
  LATTICE_CHECK(extent % tp == 0, "cannot split ", name, ": its ", what, " (", extent, ") is not divisible by tp=", tp);
  const int64_t part = extent / tp;
  return {dim, tp_rank * part, (tp_rank + 1) * part};
}

// Shards of ceil(extent / tp): the ranks past the end read fewer rows (maybe none) and pad the rest with zeros.
Slice padded(int64_t extent, int tp_rank, int tp) {
  const int64_t shard = vocab_shard_size(extent, tp);
  const int64_t begin = std::min(tp_rank * shard, extent), end = std::min((tp_rank + 1) * shard, extent);
  return {0, begin, end, true, shard - (end - begin)};
}

}  // namespace

int64_t vocab_shard_size(int64_t vocab, int tp) { return (vocab + tp - 1) / tp; }

Slice shard_slice(SplitRule rule, const std::vector<int64_t>& shape, int tp_rank, int tp, int64_t kv_heads,
                  const std::string& name) {
  if (tp == 1 || rule == SplitRule::replicated) return {};
  switch (rule) {
    case SplitRule::first_rank: return tp_rank == 0 ? Slice{} : Slice{0, 0, 0, false};
    case SplitRule::column: return even(0, shape.at(0), tp_rank, tp, name, "output dimension");
    case SplitRule::vocab: return padded(shape.at(0), tp_rank, tp);
    case SplitRule::row: return even(1, shape.at(1), tp_rank, tp, name, "input dimension");
    case SplitRule::kv_heads: {
      const int64_t head_rows = shape.at(0) / kv_heads;
      if (kv_heads % tp == 0) return even(0, shape.at(0), tp_rank, tp, name, "KV heads");
      LATTICE_CHECK(tp % kv_heads == 0, "cannot split ", name, ": ", kv_heads, " KV heads over tp=", tp,
                    " (one must divide the other)");
      const int64_t head = tp_rank / (tp / kv_heads);  // the KV head this rank's query heads read
      return {0, head * head_rows, (head + 1) * head_rows};
    }
    case SplitRule::replicated: break;
  }
  return {};
}

std::vector<int64_t> pipeline_layer_bounds(int64_t num_layers, int pp, const std::vector<int64_t>& counts) {
  LATTICE_CHECK(pp <= num_layers, "cannot split ", num_layers, " layers into ", pp, " pipeline stages");
  std::vector<int64_t> bounds = {0};
  if (counts.empty()) {
    for (int k = 0; k < pp; ++k) bounds.push_back(bounds.back() + num_layers / pp + (k >= pp - num_layers % pp ? 1 : 0));
    return bounds;
  }
  LATTICE_CHECK(static_cast<int>(counts.size()) == pp, "--pp-layers lists ", counts.size(), " stages, but pp is ", pp);
  for (int64_t c : counts) {
    LATTICE_CHECK(c >= 1, "--pp-layers: every stage needs at least one layer");
    bounds.push_back(bounds.back() + c);
  }
  LATTICE_CHECK(bounds.back() == num_layers, "--pp-layers adds up to ", bounds.back(), " layers, the model has ",
                num_layers);
  return bounds;
}

std::vector<int64_t> sliced_shape(const std::vector<int64_t>& shape, const Slice& slice) {
  std::vector<int64_t> out = shape;
  if (slice.dim >= 0) out.at(slice.dim) = slice.end - slice.begin;
  return out;
}

std::vector<int64_t> held_shape(const std::vector<int64_t>& shape, const Slice& slice) {
  std::vector<int64_t> out = sliced_shape(shape, slice);
  if (slice.dim >= 0) out.at(slice.dim) += slice.padding;
  return out;
}

}  // namespace lattice::parallel
