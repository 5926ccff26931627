// The padding contract of decode CUDA graphs, testable without a GPU: DecodeBuckets picks the smallest bucket that
// holds a pure-decode step; StepMetadata lays a step out padded to its bucket (padding rows: slot -1, one position
// of context); and on the CPU backend a decode step run padded gives the unpadded step's logits for the batch's
// rows and writes no K/V for the padding rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "engine/core/error.h"
#include "engine/decode_buckets.h"
#include "engine/model_runner.h"
#include "engine/step_metadata.h"
#include "models/llama.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

StepBatch decode_batch(int n, int64_t context) {
  StepBatch b;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> table(static_cast<size_t>((context + 15) / 16));
    std::iota(table.begin(), table.end(), static_cast<int32_t>(1 + i * table.size()));
    b.seqs.push_back({i, {7}, context - 1, table, false});
  }
  return b;
}

TEST(DecodeBuckets, BatchSizesDoubleTo256ThenStepBy64AndEndAtTheCap) {
  EXPECT_EQ(DecodeBuckets(1, 512).batch_sizes(), (std::vector<int64_t>{1}));
  EXPECT_EQ(DecodeBuckets(48, 512).batch_sizes(), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 48}));
  EXPECT_EQ(DecodeBuckets(256, 512).batch_sizes(), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256}));
  EXPECT_EQ(DecodeBuckets(300, 512).batch_sizes(), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 300}));
  EXPECT_EQ(DecodeBuckets(448, 512).batch_sizes(),
            (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 320, 384, 448}));
}

TEST(DecodeBuckets, ContextsDoubleFrom512ToTheModelsPositions) {
  EXPECT_EQ(DecodeBuckets(8, 100).context_sizes(), (std::vector<int64_t>{100}));
  EXPECT_EQ(DecodeBuckets(8, 512).context_sizes(), (std::vector<int64_t>{512}));
  EXPECT_EQ(DecodeBuckets(8, 3000).context_sizes(), (std::vector<int64_t>{512, 1024, 2048, 3000}));
  EXPECT_EQ(DecodeBuckets(8, 8192).context_sizes(), (std::vector<int64_t>{512, 1024, 2048, 4096, 8192}));
}

TEST(DecodeBuckets, FindsTheSmallestBucketHoldingAPureDecodeStepOnly) {
  const DecodeBuckets b(300, 3000);
  EXPECT_EQ(b.find(decode_batch(1, 1)), (DecodeBucket{1, 512}));
  EXPECT_EQ(b.find(decode_batch(3, 512)), (DecodeBucket{4, 512}));
  EXPECT_EQ(b.find(decode_batch(3, 513)), (DecodeBucket{4, 1024}));
  EXPECT_EQ(b.find(decode_batch(257, 2049)), (DecodeBucket{300, 3000}));
  EXPECT_EQ(b.find(decode_batch(300, 3000)), (DecodeBucket{300, 3000}));
  EXPECT_FALSE(b.find(decode_batch(301, 10)).has_value()) << "more sequences than the largest bucket";
  EXPECT_FALSE(b.find(decode_batch(2, 3001)).has_value()) << "a context past the largest bucket";
  EXPECT_FALSE(b.find(StepBatch{}).has_value());
  StepBatch prefill = decode_batch(2, 40);
  prefill.seqs[1].tokens = {1, 2};  // a chunk of two tokens makes the step mixed
  EXPECT_FALSE(b.find(prefill).has_value());
  StepBatch all_logits = decode_batch(2, 40);
  all_logits.seqs[0].all_logits = true;
  EXPECT_FALSE(b.find(all_logits).has_value());
}

TEST(StepMetadata, PaddedDecodeStepLaysOutTheBucketWithInertPaddingRows) {
  constexpr int64_t kBlock = 4;
  StepMetadata meta({8, 8, 16}, ops::ExecContext::cpu());
  StepBatch batch;
  batch.seqs.push_back({3, {10}, 5, {7, 2}, false});  // position 5: block 2, offset 1 -> slot 9
  batch.seqs.push_back({4, {11}, 0, {6}, false});     // position 0: block 6 -> slot 24
  const DecodeBucket pad{4, 20};  // 5 blocks of 4 positions per table
  meta.build(batch, kBlock, 30, 100, 64, &pad);
  EXPECT_EQ(meta.num_tokens(), 4);
  EXPECT_EQ(meta.num_seqs(), 4);
  EXPECT_EQ(meta.num_logit_rows(), 4);
  EXPECT_EQ(to_vector<int32_t>(meta.ids()), (std::vector<int32_t>{10, 11, 0, 0}));
  EXPECT_EQ(to_vector<int32_t>(meta.positions()), (std::vector<int32_t>{5, 0, 0, 0}));
  EXPECT_EQ(to_vector<int64_t>(meta.slots()), (std::vector<int64_t>{9, 24, -1, -1}));
  EXPECT_EQ(to_vector<int32_t>(meta.logit_rows()), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(meta.row_begin(), (std::vector<int64_t>{0, 1, 2})) << "the output covers the batch's sequences only";
  const ops::AttentionInputs in = meta.attention();
  EXPECT_EQ(in.max_q_len, 1);
  EXPECT_EQ(in.max_context_len, 20) << "the bucket's bound, which sizes the decode kernel's grid";
  EXPECT_EQ(in.block_tables.shape(), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(to_vector<int32_t>(in.block_tables),
            (std::vector<int32_t>{7, 2, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(to_vector<int32_t>(in.q_begins), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(to_vector<int32_t>(in.q_lens), (std::vector<int32_t>{1, 1, 1, 1}));
  EXPECT_EQ(to_vector<int32_t>(in.context_lens), (std::vector<int32_t>{6, 1, 1, 1}));

  // A bucket must hold the step: fewer rows or a shorter context than the batch's is refused.
  const DecodeBucket narrow{1, 20}, short_context{4, 4};
  EXPECT_THROW(meta.build(batch, kBlock, 30, 100, 64, &narrow), Error);
  EXPECT_THROW(meta.build(batch, kBlock, 30, 100, 64, &short_context), Error);
  const DecodeBucket too_many{9, 20};
  EXPECT_THROW(meta.build(batch, kBlock, 30, 100, 64, &too_many), Error) << "past the capacity of 8 sequences";
}

// On tiny-llama (f32, CPU): three sequences are prefilled, then one decode step runs padded to 8 rows in one cache
// and unpadded in an identical one. The batch's rows must match, and the padded step must write K/V only at the
// batch's three slots (a padding row with slot 0 would overwrite block 0, which sequence 0 uses).
TEST(DecodePadding, PaddedStepGivesTheUnpaddedLogitsAndWritesNoKvForPaddingRows) {
  const auto model = LlamaModel::load(testing::data_dir() + "/tiny-llama/f32");
  const LmShape& shape = model->lm_shape();
  const int64_t vocab = shape.vocab_size;
  std::mt19937 rng(11);
  StepBatch prefill, decode;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> prompt(static_cast<size_t>(5 + 9 * i));
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % vocab);
    const std::vector<int32_t> table{4 * i, 4 * i + 1, 4 * i + 2};  // block 0 belongs to sequence 0
    prefill.seqs.push_back({i, prompt, 0, table, false});
    decode.seqs.push_back({i, {static_cast<int32_t>(rng() % vocab)}, static_cast<int64_t>(prompt.size()), table, false});
  }
  const RunnerLimits limits{64, 8};
  KvCache padded_cache(shape.kv, 16), plain_cache(shape.kv, 16);
  ModelRunner padded(*model, padded_cache, ops::ExecContext::cpu(), limits);
  ModelRunner plain(*model, plain_cache, ops::ExecContext::cpu(), limits);
  padded.forward(prefill);
  plain.forward(prefill);

  std::vector<std::vector<float>> before;
  for (int64_t l = 0; l < shape.kv.layers; ++l) {
    before.push_back(to_vector<float>(padded_cache.k(l)));
    before.push_back(to_vector<float>(padded_cache.v(l)));
  }
  const std::optional<DecodeBucket> bucket = padded.decode_buckets().find(decode);
  ASSERT_TRUE(bucket.has_value());
  ASSERT_EQ(*bucket, (DecodeBucket{4, shape.max_positions})) << "3 sequences take the 4-row bucket";
  const DecodeBucket pad{8, bucket->context};  // more padding than the bucket: 5 padding rows
  padded.begin(decode, &pad);
  padded.embed();
  padded.run_layers();
  const std::optional<StepOutput> got = padded.head();
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->logits.dim(0), 8);
  EXPECT_EQ(got->row_begin, (std::vector<int64_t>{0, 1, 2, 3}));
  const StepOutput want = plain.forward(decode);
  ASSERT_EQ(want.logits.dim(0), 3);
  // The only difference between the two steps is the GEMMs' row count (8 vs 3), which changes the CPU GEMM's
  // blocking and so the summation order: the same 1e-5 relative bound as the batching contract
  // (tests/models/batching_test.cc, measured ~1e-7).
  for (int64_t r = 0; r < 3; ++r)
    EXPECT_LT(testing::rel_l2(got->logits.data<float>() + r * vocab, want.logits.data<float>() + r * vocab, vocab), 1e-5)
        << "row " << r;

  // Every cache element outside the batch's three new slots is bit-identical to before the step.
  std::vector<int64_t> written;
  for (const SequenceStep& s : decode.seqs)
    written.push_back(s.block_table[static_cast<size_t>(s.start_pos / 16)] * 16 + s.start_pos % 16);
  const int64_t row = shape.kv.kv_heads * shape.kv.head_dim;  // floats per slot
  for (int64_t l = 0; l < shape.kv.layers; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      const std::vector<float> after = to_vector<float>(kv == 0 ? padded_cache.k(l) : padded_cache.v(l));
      const std::vector<float>& old = before[static_cast<size_t>(2 * l + kv)];
      int64_t changed_elsewhere = 0;
      for (size_t i = 0; i < after.size(); ++i) {
        const int64_t slot = static_cast<int64_t>(i) / row;
        // Bitwise: the cache starts uninitialised, and a NaN there must count as unchanged when its bits are.
        if (std::find(written.begin(), written.end(), slot) == written.end() &&
            std::memcmp(&after[i], &old[i], sizeof(float)) != 0)
          ++changed_elsewhere;
      }
      EXPECT_EQ(changed_elsewhere, 0) << "layer " << l << (kv == 0 ? " K" : " V");
    }
}

}  // namespace
}  // namespace lattice
