// Megatron-style split rules and the slice of a weight each tensor-parallel rank owns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lattice::parallel {

enum class SplitRule {
  replicated,  // every rank holds the whole tensor (norms)
  column,      // dimension 0 (output features) split evenly: q_proj, gate/up, their biases
  kv_heads,    // dimension 0 split by KV head: evenly when tp divides the KV heads, else each rank takes
               // the one KV head its query heads use (replicated over tp / kv_heads ranks)
  row,         // dimension 1 (input features) split evenly: o_proj, down_proj (followed by an all-reduce)
  vocab,       // dimension 0 (the vocabulary) in shards of ceil(vocab / tp) rows, as vLLM's VocabParallelEmbedding:
               // the last ranks' rows past the vocabulary are zero padding, so any vocabulary splits over any tp
  first_rank,  // only TP rank 0 holds it, whole: a row-parallel layer's bias (o_proj's), which must join the
               // partial sums once before the all-reduce; the other ranks hold nothing
};

const char* split_rule_name(SplitRule rule);

// The part of a tensor one rank owns: [begin, end) along `dim`; dim = -1 means the whole tensor. A rank that
// holds none of it (first_rank on ranks other than 0) gets held = false and the empty range [0, 0) of dim 0.
// `padding` rows of zeros follow the slice along `dim` in the rank's tensor (the vocab rule's last shards), so
// every rank's part has the same size; they are not read from the checkpoint.
struct Slice {
  int dim = -1;
  int64_t begin = 0;
  int64_t end = 0;
  bool held = true;
  int64_t padding = 0;
};

// Rows of each rank's vocabulary shard: ceil(vocab / tp). Rank r holds ids [r * shard, (r + 1) * shard).
int64_t vocab_shard_size(int64_t vocab, int tp);

// The slice of a weight of `shape` that `tp_rank` of `tp` owns under `rule`. `kv_heads` is the number of
// KV heads stacked along dimension 0 (used by the kv_heads rule). Throws naming the numbers when the
// weight cannot be split that way.
Slice shard_slice(SplitRule rule, const std::vector<int64_t>& shape, int tp_rank, int tp, int64_t kv_heads,
                  const std::string& name);

// Layer boundaries of the pipeline stages: stage k runs layers [bounds[k], bounds[k + 1]). `counts` (from
// --pp-layers) gives each stage's layer count; empty means an even split, earlier stages taking one fewer.
std::vector<int64_t> pipeline_layer_bounds(int64_t num_layers, int pp, const std::vector<int64_t>& counts);

// The shape of the slice as read from the checkpoint (without padding).
std::vector<int64_t> sliced_shape(const std::vector<int64_t>& shape, const Slice& slice);
// The shape of the rank's tensor: the slice and its padding.
std::vector<int64_t> held_shape(const std::vector<int64_t>& shape, const Slice& slice);

}  // namespace lattice::parallel
