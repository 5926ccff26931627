#include "engine/decode_buckets.h"

#include <algorithm>

#include "engine/core/error.h"

namespace lattice {

namespace {

constexpr int64_t kLastDoubledBatch = 256;  // powers of two up to here, then steps of kBatchStep
constexpr int64_t kBatchStep = 64;
constexpr int64_t kFirstContext = 512;  // the largest split-K partition: one partition at batch >= 16

// The first bucket >= n (buckets ascending), or -1.
int64_t ceil_bucket(const std::vector<int64_t>& buckets, int64_t n) {
  const auto it = std::lower_bound(buckets.begin(), buckets.end(), n);
  return it == buckets.end() ? -1 : *it;
}

}  // namespace

DecodeBuckets::DecodeBuckets(int64_t max_seqs, int64_t max_positions) {
  LATTICE_CHECK(max_seqs > 0 && max_positions > 0, "decode buckets need max_seqs and max_positions > 0, got ",
                max_seqs, " and ", max_positions);
  for (int64_t b = 1; b <= std::min(max_seqs, kLastDoubledBatch); b *= 2) seqs_.push_back(b);
  for (int64_t b = kLastDoubledBatch + kBatchStep; b <= max_seqs; b += kBatchStep) seqs_.push_back(b);
  if (seqs_.back() != max_seqs) seqs_.push_back(max_seqs);  // a cap off the grid still gets its own bucket
  for (int64_t c = kFirstContext; c < max_positions; c *= 2) contexts_.push_back(c);
  contexts_.push_back(max_positions);
}

std::optional<DecodeBucket> DecodeBuckets::find(const StepBatch& batch) const {
  if (batch.seqs.empty()) return std::nullopt;
  int64_t context = 0;
  for (const SequenceStep& s : batch.seqs) {
    if (s.tokens.size() != 1 || s.all_logits) return std::nullopt;
    context = std::max(context, s.context_len());
  }
  const int64_t seqs = ceil_bucket(seqs_, static_cast<int64_t>(batch.seqs.size()));
  const int64_t ctx = ceil_bucket(contexts_, context);
  if (seqs < 0 || ctx < 0) return std::nullopt;
  return DecodeBucket{seqs, ctx};
}

}  // namespace lattice
