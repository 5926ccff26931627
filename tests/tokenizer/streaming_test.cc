// streaming.jsonl: the incremental detokenizer must never emit half a character, must emit each
// character as soon as it is complete, and its chunks plus flush() must join to the full decode.
#include <gtest/gtest.h>

#include "tests/tokenizer/tokenizer_test_data.h"

namespace lattice::testing {
namespace {

class Streaming : public ::testing::TestWithParam<std::string> {
 protected:
  const Tokenizer& tokenizer() const { return fixture_tokenizer(GetParam()); }
  std::vector<nlohmann::json> cases() const {
    return read_jsonl(tokenizer_data_dir() + "/" + GetParam() + "/streaming.jsonl");
  }
};

TEST_P(Streaming, ChunksJoinToDecodedAndNeverSplitACharacter) {
  const auto rows = cases();
  ASSERT_EQ(rows.size(), 14u);
  for (const auto& row : rows) {
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    IncrementalDetokenizer stream(tokenizer());
    std::string joined;
    for (const int32_t id : ids) {
      const std::string chunk = stream.push(id);
      EXPECT_TRUE(is_valid_utf8(chunk)) << "case " << row["name"] << " emitted a split character";
      joined += chunk;
    }
    const std::string rest = stream.flush();
    EXPECT_TRUE(is_valid_utf8(rest)) << "case " << row["name"];
    joined += rest;
    EXPECT_EQ(joined, row["decoded"].get<std::string>()) << "case " << row["name"];
    EXPECT_EQ(joined, tokenizer().decode(ids)) << "case " << row["name"];
  }
}

// stream_chunks: after each token, everything that is complete UTF-8 so far (for Mistral without
// the leading space that Strip removes). Emitting eagerly, a genuine U+FFFD included, must give
// exactly these chunks; a character split across byte tokens appears when its last byte arrives.
TEST_P(Streaming, ChunksMatchTheCompletePrefixPolicy) {
  int split_cases = 0;
  for (const auto& row : cases()) {
    split_cases += row["token_splits_a_character"].get<bool>();
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    const auto& chunks = row["stream_chunks"];
    ASSERT_EQ(chunks.size(), ids.size());
    IncrementalDetokenizer stream(tokenizer());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(stream.push(ids[i]), chunks[i].get<std::string>()) << "case " << row["name"] << " step " << i;
    }
    EXPECT_EQ(stream.flush(), "") << "case " << row["name"];
  }
  EXPECT_GT(split_cases, 0);
}

TEST_P(Streaming, FlushResetsTheStream) {
  const auto rows = cases();
  const auto ids = rows.front()["ids"].get<std::vector<int32_t>>();
  IncrementalDetokenizer stream(tokenizer());
  for (int round = 0; round < 2; ++round) {
    std::string joined;
    for (const int32_t id : ids) joined += stream.push(id);
    joined += stream.flush();
    EXPECT_EQ(joined, tokenizer().decode(ids)) << "round " << round;
  }
}

TEST_P(Streaming, OutOfRangeIdThrowsAndLeavesTheStreamUsable) {
  IncrementalDetokenizer stream(tokenizer());
  EXPECT_THROW(stream.push(tokenizer().vocab_size()), Error);
  EXPECT_THROW(stream.push(-1), Error);
  const auto ids = tokenizer().encode("Hello world", false);
  std::string joined;
  for (const int32_t id : ids) joined += stream.push(id);
  joined += stream.flush();
  EXPECT_EQ(joined, tokenizer().decode(ids));
}

// Detokenizers are values: one per request in a container, moved around while streaming.
TEST_P(Streaming, DetokenizersCanLiveInAContainer) {
  const auto rows = cases();
  std::vector<IncrementalDetokenizer> streams;
  std::vector<std::string> joined(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) streams.emplace_back(Tokenizer(tokenizer()));  // from a temporary copy
  size_t longest = 0;
  for (const auto& row : rows) longest = std::max(longest, row["ids"].size());
  for (size_t step = 0; step < longest; ++step) {  // interleave the streams, like a batch
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto& ids = rows[r]["ids"];
      if (step < ids.size()) joined[r] += streams[r].push(ids[step].get<int32_t>());
    }
  }
  streams.erase(streams.begin());  // needs move assignment
  for (size_t r = 1; r < rows.size(); ++r) {
    joined[r] += streams[r - 1].flush();
    EXPECT_EQ(joined[r], rows[r]["decoded"].get<std::string>()) << "case " << rows[r]["name"];
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Streaming, ::testing::Values("gpt2", "qwen3", "mistral"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lattice::testing
