// The tiny-llama fixture's synthetic SentencePiece-style BPE (512 ids, byte fallback, <s> template).
#include <gtest/gtest.h>

#include "tests/tokenizer/tokenizer_test_data.h"

namespace lattice::testing {
namespace {

const Tokenizer& tiny_llama() {
  static const Tokenizer tokenizer = Tokenizer::from_dir(std::string(LATTICE_TEST_DATA_DIR) + "/tiny-llama/f32");
  return tokenizer;
}

TEST(TinyLlamaTokenizer, VocabAndSpecialIds) {
  EXPECT_EQ(tiny_llama().vocab_size(), 512);
  EXPECT_EQ(tiny_llama().bos_id(), 1);
  EXPECT_EQ(tiny_llama().eos_id(), 2);
  EXPECT_EQ(tiny_llama().id_to_token(3), "<0x00>");
  EXPECT_TRUE(tiny_llama().is_special(1));
}

TEST(TinyLlamaTokenizer, PrependsBosAndRoundTrips) {
  for (const std::string text : {"Hello world", "the quick brown fox", "x  y", "tab\there", "中文 and émoji 😀", ""}) {
    const auto ids = tiny_llama().encode(text, false);
    const auto with_bos = tiny_llama().encode(text, true);
    ASSERT_EQ(with_bos.size(), ids.size() + 1) << text;
    EXPECT_EQ(with_bos.front(), 1) << text;
    EXPECT_EQ(tiny_llama().decode(ids), text);
  }
}

TEST(TinyLlamaTokenizer, UnknownCharactersFallBackToBytes) {
  // "中" is not in the 512-token vocab: "▁" then its three UTF-8 bytes as <0xNN> tokens (id = 3 + byte).
  const auto ids = tiny_llama().encode("中", false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 3, ids.end()), (std::vector<int32_t>{3 + 0xE4, 3 + 0xB8, 3 + 0xAD}));
}

TEST(TinyLlamaTokenizer, MergesAreUsed) {
  // Merges exist for "x I" -> "xI" and "xI v" -> "xIv"; a merged token must win over characters.
  const auto ids = tiny_llama().encode("xIv", false);
  const auto xiv = tiny_llama().token_to_id("xIv");
  ASSERT_TRUE(xiv.has_value());
  EXPECT_NE(std::find(ids.begin(), ids.end(), *xiv), ids.end()) << format_ids(ids);
}

TEST(TinyLlamaTokenizer, Bf16CopyHasTheSameTokenizer) {
  const Tokenizer bf16 = Tokenizer::from_dir(std::string(LATTICE_TEST_DATA_DIR) + "/tiny-llama/bf16");
  const std::string text = "Streaming text from a tiny model.";
  EXPECT_EQ(bf16.encode(text, true), tiny_llama().encode(text, true));
}

}  // namespace
}  // namespace lattice::testing
