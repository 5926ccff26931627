// Unit tests of the pipeline components on small hand-made tokenizers, checked against what
// HF tokenizers (Rust) does for the same configuration.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/decoders.h"
#include "engine/tokenizer/normalizers.h"
#include "engine/tokenizer/pre_tokenizers.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/utf8.h"
#include "tests/tokenizer/tokenizer_json_builder.h"
#include "tests/tokenizer/tokenizer_test_data.h"

namespace lattice::testing {
namespace {

using namespace lattice::tokenizer;
using Strings = std::vector<std::string>;

Strings run_pre_tokenizer(const PreTokenizer& pre_tokenizer, const std::string& text, bool at_start = true) {
  Strings out;
  auto collect = [&](Piece& piece) { out.push_back(piece.text); };
  Piece piece{text, at_start};
  pre_tokenizer.pre_tokenize(piece, PieceSink(collect));
  return out;
}

Strings run_decoder(const Decoder& decoder, Strings tokens) {
  decoder.decode_chain(tokens, nullptr);
  return tokens;
}

// ---- UTF-8 ----------------------------------------------------------------------------------

TEST(Utf8, LossyDecodingFollowsRustMaximalSubparts) {
  const std::string fffd(kReplacementChar);
  EXPECT_EQ(lossy_utf8("a\xF0\x9F\x98"), "a" + fffd);                 // truncated 4-byte: one
  EXPECT_EQ(lossy_utf8("\xED\xA0\x80"), fffd + fffd + fffd);           // surrogate: one per byte
  EXPECT_EQ(lossy_utf8("\xC0\x80"), fffd + fffd);                      // overlong lead
  EXPECT_EQ(lossy_utf8("\xF0\x9F\x41"), fffd + "A");                   // cut short by ASCII
  EXPECT_EQ(lossy_utf8("\xE4\xB8\xAD\x80"), "\xE4\xB8\xAD" + fffd);    // stray continuation
  EXPECT_EQ(lossy_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
}

TEST(Utf8, IncompleteTailIsOnlyAWellFormedPrefix) {
  EXPECT_EQ(incomplete_utf8_tail("ab"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("a\xE4"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("\xE4\xB8\xAD"), 0u);  // complete
  EXPECT_EQ(incomplete_utf8_tail("\xED\xA0"), 0u);      // can never become valid
  EXPECT_EQ(incomplete_utf8_tail("\x80"), 0u);
}

TEST(Utf8, FindInvalidReportsTheOffset) {
  EXPECT_FALSE(find_invalid_utf8("héllo 中 😀").has_value());
  EXPECT_EQ(find_invalid_utf8("ab\xFFz"), 2u);
  EXPECT_EQ(find_invalid_utf8("ab\xE4\xB8"), 2u);
}

// ---- Regex ----------------------------------------------------------------------------------

TEST(Regex, BackslashSIsUnicodeWhiteSpace) {
  const Regex regex(R"(\s+)");
  std::vector<std::pair<size_t, size_t>> matches;
  regex.find_all("a\xC2\x85" "b\xEF\xBB\xBF" "c\xE3\x80\x80" "d", matches);  // NEL, BOM, U+3000
  ASSERT_EQ(matches.size(), 2u);
  EXPECT_EQ(matches[0], std::make_pair(size_t{1}, size_t{3}));  // NEL is White_Space
  EXPECT_EQ(matches[1], std::make_pair(size_t{8}, size_t{11}));  // U+3000 is; the BOM is not
}

TEST(Regex, TranslationKeepsEscapedBackslashes) {
  EXPECT_EQ(translate_whitespace_classes(R"([^\s\p{L}]\S\\s)"), R"([^\p{White_Space}\p{L}]\P{White_Space}\\s)");
}

TEST(Regex, LookAheadAndUnicodeProperties) {
  const Regex regex(R"(\s+(?!\S)|\p{L}+)");
  std::vector<std::pair<size_t, size_t>> matches;
  regex.find_all("héllo   x", matches);
  ASSERT_EQ(matches.size(), 3u);
  EXPECT_EQ(matches[0], std::make_pair(size_t{0}, size_t{6}));
  EXPECT_EQ(matches[1], std::make_pair(size_t{6}, size_t{8}));  // leaves one space for " x"
}

// ---- Normalizers ----------------------------------------------------------------------------

TEST(Normalizers, NfcComposesAndFastPathAgreesWithUtf8proc) {
  const UnicodeNormalizer nfc(UnicodeForm::kNfc);
  std::string text = "cafe\xCC\x81 \xE2\x84\xAB";  // e + combining acute, ANGSTROM SIGN
  nfc.normalize(text);
  EXPECT_EQ(text, "caf\xC3\xA9 \xC3\x85");
  // Random mixes of boundary characters and composing material against whole-text NFC.
  const std::vector<char32_t> alphabet = {'a', 'e', ' ', 0xE9, 0x301, 0x308, 0x323, 0x1100, 0x1161, 0x11A8,
                                          0xAC00, 0x304B, 0x3099, 0x4E2D, 0x212B, 0x2F800, 0x0928, 0x093C, 0x1F600};
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string input;
    const int length = static_cast<int>(rng() % 12);
    for (int i = 0; i < length; ++i) append_codepoint(input, alphabet[rng() % alphabet.size()]);
    std::string fast = input;
    nfc.normalize(fast);
    // Whole-text path: a leading U+1F600 is no boundary character and composes with nothing, so
    // everything after it goes through utf8proc in one piece.
    std::string slow = "\xF0\x9F\x98\x80" + input;
    nfc.normalize(slow);
    ASSERT_EQ(fast, slow.substr(4)) << "round " << round;
  }
}

TEST(Normalizers, PrependSkipsEmptyAndReplaceIsLiteral) {
  const PrependNormalizer prepend("\xE2\x96\x81");
  std::string empty;
  prepend.normalize(empty);
  EXPECT_EQ(empty, "");
  std::string text = "a.b";
  prepend.normalize(text);
  EXPECT_EQ(text, "\xE2\x96\x81" "a.b");
  ReplaceNormalizer replace(Pattern::literal("."), "!!");
  replace.normalize(text);
  EXPECT_EQ(text, "\xE2\x96\x81" "a!!b");
}

// ---- Pre-tokenizers -------------------------------------------------------------------------

TEST(PreTokenizers, SplitBehavioursMatchHf) {
  // HF's own test: "The-final--countdown" split on "-".
  const std::string text = "The-final--countdown";
  auto split = [&](SplitBehavior behavior, bool invert) {
    return run_pre_tokenizer(SplitPreTokenizer(Pattern::literal("-"), behavior, invert), text);
  };
  EXPECT_EQ(split(SplitBehavior::kRemoved, false), (Strings{"The", "final", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kIsolated, false), (Strings{"The", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithPrevious, false), (Strings{"The-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithNext, false), (Strings{"The", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(SplitBehavior::kContiguous, false), (Strings{"The", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kRemoved, true), (Strings{"-", "-", "-"}));
}

TEST(PreTokenizers, ByteLevelRegexAndPrefixSpace) {
  EXPECT_EQ(run_pre_tokenizer(ByteLevelPreTokenizer(false, true), "Hello world!"),
            (Strings{"Hello", "\xC4\xA0world", "!"}));
  EXPECT_EQ(run_pre_tokenizer(ByteLevelPreTokenizer(true, true), "Hello"), (Strings{"\xC4\xA0Hello"}));
  EXPECT_EQ(run_pre_tokenizer(ByteLevelPreTokenizer(false, false), "a b\n"), (Strings{"a\xC4\xA0" "b\xC4\x8A"}));
}

TEST(PreTokenizers, MetaspacePrependSchemes) {
  const std::string bar = "\xE2\x96\x81";
  EXPECT_EQ(run_pre_tokenizer(MetaspacePreTokenizer(bar, PrependScheme::kAlways, true), "Hey  friend"),
            (Strings{bar + "Hey", bar, bar + "friend"}));
  EXPECT_EQ(run_pre_tokenizer(MetaspacePreTokenizer(bar, PrependScheme::kFirst, true), "Hey", false),
            (Strings{"Hey"}));
  EXPECT_EQ(run_pre_tokenizer(MetaspacePreTokenizer(bar, PrependScheme::kFirst, true), "Hey", true),
            (Strings{bar + "Hey"}));
  EXPECT_EQ(run_pre_tokenizer(MetaspacePreTokenizer(bar, PrependScheme::kNever, false), "a b"),
            (Strings{"a" + bar + "b"}));
}

TEST(PreTokenizers, DigitsIndividualOrContiguous) {
  EXPECT_EQ(run_pre_tokenizer(DigitsPreTokenizer(true), "a123b"), (Strings{"a", "1", "2", "3", "b"}));
  // U+0663 ARABIC-INDIC DIGIT THREE is numeric too.
  EXPECT_EQ(run_pre_tokenizer(DigitsPreTokenizer(false), "a123b\xD9\xA3"), (Strings{"a", "123", "b", "\xD9\xA3"}));
}

TEST(PreTokenizers, Llama3SplitRegex) {
  // Llama-3's pattern: case-insensitive contractions, digits in groups of at most three.
  const SplitPreTokenizer split(
      Pattern::regex(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
      SplitBehavior::kIsolated, false);
  EXPECT_EQ(run_pre_tokenizer(split, "I'LL pay 12345 now!\n\n"),
            (Strings{"I", "'LL", " pay", " ", "123", "45", " now", "!\n\n"}));
}

TEST(PreTokenizers, SequenceChainsSteps) {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  steps.push_back(std::make_unique<SplitPreTokenizer>(Pattern::regex(R"(\p{N})"), SplitBehavior::kIsolated, false));
  steps.push_back(std::make_unique<ByteLevelPreTokenizer>(false, false));
  EXPECT_EQ(run_pre_tokenizer(SequencePreTokenizer(std::move(steps)), "ab 12"),
            (Strings{"ab\xC4\xA0", "1", "2"}));
}

// ---- Decoders -------------------------------------------------------------------------------

TEST(Decoders, ByteFallbackInvalidRunIsOneReplacementPerByte) {
  const std::string fffd(kReplacementChar);
  EXPECT_EQ(run_decoder(ByteFallbackDecoder(), {"<0xE4>", "<0xB8>", "<0xAD>", "x"}), (Strings{"\xE4\xB8\xAD", "x"}));
  EXPECT_EQ(run_decoder(ByteFallbackDecoder(), {"<0xE4>", "<0xB8>", "x", "<0x61>"}), (Strings{fffd, fffd, "x", "a"}));
  EXPECT_EQ(run_decoder(ByteFallbackDecoder(), {"<0xZZ>", "<0x4>"}), (Strings{"<0xZZ>", "<0x4>"}));
}

TEST(Decoders, StripFuseReplaceMetaspace) {
  EXPECT_EQ(run_decoder(StripDecoder(' ', 1, 0), {"  a ", " "}), (Strings{" a ", ""}));
  EXPECT_EQ(run_decoder(StripDecoder(' ', 0, 2), {"a   "}), (Strings{"a "}));
  EXPECT_EQ(run_decoder(FuseDecoder(), {"a", "b", "c"}), (Strings{"abc"}));
  EXPECT_EQ(run_decoder(ReplaceDecoder(Pattern::literal("\xE2\x96\x81"), " "), {"\xE2\x96\x81" "a\xE2\x96\x81"}),
            (Strings{" a "}));
  const std::string bar = "\xE2\x96\x81";
  EXPECT_EQ(run_decoder(MetaspaceDecoder(bar, PrependScheme::kAlways), {bar + "Hey", bar + "friend!"}),
            (Strings{"Hey", " friend!"}));
  EXPECT_EQ(run_decoder(MetaspaceDecoder(bar, PrependScheme::kNever), {bar + "Hey"}), (Strings{" Hey"}));
}

TEST(Decoders, ByteLevelMapsBackAndKeepsForeignTokens) {
  EXPECT_EQ(run_decoder(ByteLevelDecoder(), {"Hello", "\xC4\xA0world", "<|x|>", "\xC4\x8A"}),
            (Strings{"Hello world<|x|>\n"}));
}

// ---- BPE model and the whole pipeline -------------------------------------------------------

TEST(Bpe, MergesApplyLowestRankFirst) {
  // "abc": rank 0 is "b c", so "a b" (rank 1) must not win even though it is leftmost.
  auto json = bpe_tokenizer_json({"a", "b", "c", "bc", "ab", "abc"}, {"b c", "a b", "a bc"});
  const Tokenizer tokenizer = Tokenizer::from_json(json.dump());
  EXPECT_EQ(tokenizer.encode("abc", false), (std::vector<int32_t>{5}));
  EXPECT_EQ(tokenizer.encode("ab", false), (std::vector<int32_t>{4}));
  EXPECT_EQ(tokenizer.encode("cab", false), (std::vector<int32_t>{2, 4}));
}

TEST(Bpe, PairMergesEqualStringMerges) {
  auto strings = bpe_tokenizer_json({"a", "b", "ab", "aab"}, {"a b", "a ab"});
  auto pairs = strings;
  pairs["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "b"}), nlohmann::json::array({"a", "ab"})});
  EXPECT_EQ(Tokenizer::from_json(strings.dump()).encode("aabab", false),
            Tokenizer::from_json(pairs.dump()).encode("aabab", false));
  EXPECT_EQ(Tokenizer::from_json(pairs.dump()).encode("aabab", false), (std::vector<int32_t>{3, 2}));
}

TEST(Bpe, IgnoreMergesTakesWholeVocabWords) {
  // "abc" is in the vocab but not reachable by merges.
  auto json = bpe_tokenizer_json({"a", "b", "c", "ab", "abc"}, {"a b"});
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("abc", false), (std::vector<int32_t>{3, 2}));
  json["model"]["ignore_merges"] = true;
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("abc", false), (std::vector<int32_t>{4}));
}

TEST(Bpe, ByteFallbackThenUnknownFusedOrNot) {
  auto json = bpe_tokenizer_json({"<unk>", "a", "<0xC3>", "<0xA9>"}, {});
  json["model"]["unk_token"] = "<unk>";
  json["model"]["byte_fallback"] = true;
  // é = C3 A9 has byte tokens; ü = C3 BC lacks BC, so it is unknown.
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("a\xC3\xA9", false), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("\xC3\xBC\xC3\xBC" "a", false), (std::vector<int32_t>{0, 0, 1}));
  json["model"]["fuse_unk"] = true;
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("\xC3\xBC\xC3\xBC" "a", false), (std::vector<int32_t>{0, 1}));
  json["model"]["unk_token"] = nullptr;  // neither way: the character is dropped, as in HF
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("\xC3\xBC" "a", false), (std::vector<int32_t>{1}));
}

TEST(Bpe, ContinuingSubwordPrefixAndSuffix) {
  auto json = bpe_tokenizer_json({"a", "##b", "ab", "c</w>", "##c</w>", "abc</w>"}, {"a ##b", "ab ##c</w>"});
  json["model"]["continuing_subword_prefix"] = "##";
  json["model"]["end_of_word_suffix"] = "</w>";
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("abc", false), (std::vector<int32_t>{5}));
  EXPECT_EQ(Tokenizer::from_json(json.dump()).encode("c", false), (std::vector<int32_t>{3}));
}

TEST(AddedTokens, LongestFirstSpecialOrNotAndSkipOnDecode) {
  auto json = bpe_tokenizer_json({"<", ">", "a", "b"}, {});
  auto longer = added_token(5, "<a>b", false);
  longer["normalized"] = false;  // same matching pass as the special token
  json["added_tokens"] = {added_token(4, "<a>", true), longer};
  json["decoder"] = {{"type", "Fuse"}};
  const Tokenizer tokenizer = Tokenizer::from_json(json.dump());
  EXPECT_EQ(tokenizer.encode("a<a>b<a>", false), (std::vector<int32_t>{2, 5, 4}));
  EXPECT_EQ(tokenizer.decode({2, 5, 4}), "a<a>b<a>");
  EXPECT_EQ(tokenizer.decode({2, 5, 4}, true), "a<a>b");  // only the special one is skipped
  EXPECT_TRUE(tokenizer.is_special(4));
  EXPECT_FALSE(tokenizer.is_special(5));
  EXPECT_EQ(tokenizer.token_to_id("<a>"), 4);
  EXPECT_EQ(tokenizer.vocab_size(), 6);
}

TEST(AddedTokens, NormalizedTokensMatchNormalizedText) {
  auto json = bpe_tokenizer_json({"x", "A", "\xC3\x85"}, {});
  json["normalizer"] = {{"type", "NFC"}};
  // Written decomposed; matched after NFC composes both the token and the text.
  json["added_tokens"] = {added_token(3, "A\xCC\x8Ax", false)};
  const Tokenizer tokenizer = Tokenizer::from_json(json.dump());
  EXPECT_EQ(tokenizer.encode("x\xC3\x85x", false), (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(tokenizer.encode("xA\xCC\x8Ax", false), (std::vector<int32_t>{0, 3}));
}

TEST(AddedTokens, LstripRstripAndSingleWord) {
  auto json = bpe_tokenizer_json({" ", "a", "b"}, {});
  auto strip = added_token(3, "<m>", true);
  strip["lstrip"] = true;
  strip["rstrip"] = true;
  auto word = added_token(4, "ab", false);
  word["single_word"] = true;
  json["added_tokens"] = {strip, word};
  const Tokenizer tokenizer = Tokenizer::from_json(json.dump());
  EXPECT_EQ(tokenizer.encode("a  <m>  b", false), (std::vector<int32_t>{1, 3, 2}));
  EXPECT_EQ(tokenizer.encode("ab a", false), (std::vector<int32_t>{4, 0, 1}));
  EXPECT_EQ(tokenizer.encode("aab", false), (std::vector<int32_t>{1, 1, 2}));  // inside a word
}

TEST(PostProcessors, TemplateAndConfigBosEos) {
  auto json = bpe_tokenizer_json({"<s>", "</s>", "a"}, {});
  json["added_tokens"] = {added_token(0, "<s>", true), added_token(1, "</s>", true)};
  json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", nlohmann::json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}}}}};
  const Tokenizer plain = Tokenizer::from_json(json.dump());
  EXPECT_EQ(plain.encode("a", true), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(plain.encode("a", false), (std::vector<int32_t>{2}));
  EXPECT_FALSE(plain.bos_id().has_value());

  const std::string config = R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_eos_token": true})";
  const Tokenizer configured = Tokenizer::from_json(json.dump(), config);
  EXPECT_EQ(configured.bos_id(), 0);
  EXPECT_EQ(configured.eos_id(), 1);
  EXPECT_EQ(configured.encode("a", true), (std::vector<int32_t>{0, 2, 1}));  // bos not doubled, eos added
}

TEST(Tokenizer, ConcurrentEncodesShareTheCacheSafely) {
  // Expected ids come from a separate instance; the shared one starts with a cold cache that
  // two threads fill at once.
  const Tokenizer reference = Tokenizer::from_dir(tokenizer_data_dir() + "/gpt2");
  const Tokenizer shared = Tokenizer::from_dir(tokenizer_data_dir() + "/gpt2");
  std::vector<std::string> texts;
  std::mt19937 rng(11);
  const std::vector<std::string> words = {"tensor", " parallel", " 中文", " cache", "ing", " 2026", "!", " über", "\n"};
  for (int i = 0; i < 400; ++i) {
    std::string text;
    for (int w = 0; w < 12; ++w) text += words[rng() % words.size()];
    texts.push_back(text);
  }
  std::vector<std::vector<int32_t>> want;
  for (const auto& text : texts) want.push_back(reference.encode(text, false));
  std::vector<int> mismatches(2, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < texts.size() * 2; i += 2) mismatches[t] += shared.encode(texts[i % texts.size()], false) != want[i % texts.size()];
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0}));
}

}  // namespace
}  // namespace lattice::testing

namespace lattice::testing {
namespace {

// Long pieces are cut into chunks at boundaries no token can span; the ids must equal plain BPE
// over the whole piece.
TEST(Bpe, ChunkedLongPiecesEqualWholePieceBpe) {
  for (const std::string name : {"mistral", "gpt2"}) {
    std::ifstream file(tokenizer_data_dir() + "/" + name + "/tokenizer.json");
    const auto json = nlohmann::json::parse(file);
    TokenIdMap vocab;
    for (const auto& [token, id] : json["model"]["vocab"].items()) vocab.emplace(token, id.get<int32_t>());
    std::vector<std::pair<std::string, std::string>> merges;
    for (const auto& merge : json["model"]["merges"]) {
      const std::string text = merge.get<std::string>();
      merges.emplace_back(text.substr(0, text.find(' ')), text.substr(text.find(' ') + 1));
    }
    BpeOptions options;
    options.byte_fallback = json["model"]["byte_fallback"].get<bool>();
    if (json["model"]["unk_token"].is_string()) options.unk_token = json["model"]["unk_token"].get<std::string>();
    options.fuse_unk = json["model"]["fuse_unk"].get<bool>();
    const BpeModel model(std::move(vocab), merges, options);

    const std::vector<std::string> words = {"\xE2\x96\x81", "the", "\xE2\x96\x81\xE2\x96\x81", "ing", ".", "\xC4\xA0",
                                            "中文", "😀", "12", "\n", "é", "tion", "\xC4\xA0\xC4\xA0", "a", "'s"};
    std::mt19937 rng(5);
    int chunked_pieces = 0;
    for (int round = 0; round < 300; ++round) {
      std::string piece;
      const int length = 10 + static_cast<int>(rng() % 80);
      for (int i = 0; i < length; ++i) piece += words[rng() % words.size()];
      std::vector<int32_t> fast, reference;
      model.tokenize(piece, fast);
      model.tokenize_whole(piece, reference);
      ASSERT_EQ(fast, reference) << name << " round " << round;
      chunked_pieces += piece.size() > 64;
    }
    EXPECT_GT(chunked_pieces, 100) << name;
  }
}

}  // namespace
}  // namespace lattice::testing
