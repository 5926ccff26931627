// StepMetadata: what every kernel of a step reads, built from the batch on the host. Checked field by field
// against values written out by hand for a mixed batch, and for the errors it must catch before a kernel runs.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/step_metadata.h"

namespace lattice {
namespace {

const StepCapacity kCapacity{16, 4, 8};
constexpr int64_t kBlock = 4, kVocab = 100, kPositions = 32;
constexpr int32_t kBlocks = 20;

// Sequence 7: a 3-token prefill chunk after 2 cached tokens (all logits); 9: one decode token at position 8;
// 11: a 1-token prompt.
StepBatch mixed_batch() {
  StepBatch b;
  b.seqs.push_back({7, {10, 11, 12}, 2, {5, 6}, true});
  b.seqs.push_back({9, {13}, 8, {1, 2, 3}, false});
  b.seqs.push_back({11, {14}, 0, {19}, false});
  return b;
}

TEST(StepMetadata, MixedBatchFieldsMatchHandComputedValues) {
  StepMetadata meta(kCapacity, ops::ExecContext::cpu());
  meta.build(mixed_batch(), kBlock, kBlocks, kVocab, kPositions);
  EXPECT_EQ(meta.num_tokens(), 5);
  EXPECT_EQ(meta.num_seqs(), 3);
  EXPECT_EQ(to_vector<int32_t>(meta.ids()), (std::vector<int32_t>{10, 11, 12, 13, 14}));
  EXPECT_EQ(to_vector<int32_t>(meta.positions()), (std::vector<int32_t>{2, 3, 4, 8, 0}));
  // slot = table[pos / 4] * 4 + pos % 4: seq 7 positions 2, 3 in block 5, 4 in block 6; seq 9 position 8 in
  // block 3; seq 11 position 0 in block 19.
  EXPECT_EQ(to_vector<int64_t>(meta.slots()), (std::vector<int64_t>{22, 23, 24, 12, 76}));
  EXPECT_EQ(to_vector<int32_t>(meta.logit_rows()), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(meta.row_begin(), (std::vector<int64_t>{0, 3, 4, 5}));
  const ops::AttentionInputs in = meta.attention();
  EXPECT_EQ(to_vector<int32_t>(in.q_begins), (std::vector<int32_t>{0, 3, 4}));
  EXPECT_EQ(to_vector<int32_t>(in.q_lens), (std::vector<int32_t>{3, 1, 1}));
  EXPECT_EQ(to_vector<int32_t>(in.context_lens), (std::vector<int32_t>{5, 9, 1}));
  EXPECT_EQ(in.max_q_len, 3);
  EXPECT_EQ(in.max_context_len, 9);
  // Padded to the widest table of the step (3 blocks for 9 positions), zeros past each context.
  EXPECT_EQ(in.block_tables.shape(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(to_vector<int32_t>(in.block_tables), (std::vector<int32_t>{5, 6, 0, 1, 2, 3, 19, 0, 0}));
}

TEST(StepMetadata, LastRowOnlyUnlessAllLogitsAndRebuildsInPlace) {
  StepMetadata meta(kCapacity, ops::ExecContext::cpu());
  StepBatch b = mixed_batch();
  b.seqs[0].all_logits = false;
  meta.build(b, kBlock, kBlocks, kVocab, kPositions);
  EXPECT_EQ(to_vector<int32_t>(meta.logit_rows()), (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(meta.row_begin(), (std::vector<int64_t>{0, 1, 2, 3}));
  const void* ids_before = meta.ids().raw();
  StepBatch decode;
  decode.seqs.push_back({9, {15}, 9, {1, 2, 3}, false});
  meta.build(decode, kBlock, kBlocks, kVocab, kPositions);
  EXPECT_EQ(meta.ids().raw(), ids_before) << "views keep their addresses from step to step";
  EXPECT_EQ(to_vector<int64_t>(meta.slots()), (std::vector<int64_t>{13}));
  EXPECT_EQ(meta.attention().max_q_len, 1);
}

// Async scheduling: the rows whose ids the device overwrites travel as (row, source) pairs; the ids keep the
// batch's placeholders (the kernel that writes them runs on the GPU only).
TEST(StepMetadata, FedTokensListTheirRowsAndSources) {
  StepMetadata meta(kCapacity, ops::ExecContext::cpu());
  meta.build(mixed_batch(), kBlock, kBlocks, kVocab, kPositions, nullptr, {{3, 1}, {4, 0}});
  EXPECT_EQ(meta.num_fed(), 2);
  EXPECT_EQ(meta.fed().shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(to_vector<int32_t>(meta.fed()), (std::vector<int32_t>{3, 1, 4, 0}));
  EXPECT_EQ(to_vector<int32_t>(meta.ids()), (std::vector<int32_t>{10, 11, 12, 13, 14}));
  meta.build(mixed_batch(), kBlock, kBlocks, kVocab, kPositions);
  EXPECT_EQ(meta.num_fed(), 0) << "a step without fed tokens lists none";
  try {
    meta.build(mixed_batch(), kBlock, kBlocks, kVocab, kPositions, nullptr, {{5, 0}});
    ADD_FAILURE() << "no error for a fed row past the step's tokens";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the step's 5 tokens"), std::string::npos) << e.what();
  }
}

TEST(StepMetadata, RejectsWhatTheKernelsCannotCheck) {
  StepMetadata meta(kCapacity, ops::ExecContext::cpu());
  auto expect_error = [&](StepBatch b, const std::string& fragment) {
    try {
      meta.build(b, kBlock, kBlocks, kVocab, kPositions);
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  StepBatch b = mixed_batch();
  b.seqs[1].block_table = {1, 2};  // 9 positions need 3 blocks
  expect_error(b, "needs 3 KV blocks for 9 tokens");
  b = mixed_batch();
  b.seqs[2].block_table = {kBlocks};
  expect_error(b, "block 20 is outside the cache's 20 blocks");
  b = mixed_batch();
  b.seqs[0].tokens[1] = kVocab;
  expect_error(b, "token id 100 is out of range");
  b = mixed_batch();
  b.seqs[1].start_pos = kPositions;
  expect_error(b, "past the model's 32 positions");
  b = mixed_batch();
  b.seqs[0].tokens.assign(16, 1);  // 16 + 2 tokens > 16
  b.seqs[0].block_table = {0, 1, 2, 3, 4};
  expect_error(b, "exceeds the engine's 16 (--max-tokens-per-step)");
  expect_error(StepBatch{}, "at least one sequence");
}

}  // namespace
}  // namespace lattice
