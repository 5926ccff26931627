// Malformed tokenizer.json files, invalid input bytes and bad ids must fail with a lattice::Error
// whose message names the problem, never crash or fall back silently.
#include <gtest/gtest.h>

#include "tests/tokenizer/tokenizer_json_builder.h"
#include "tests/tokenizer/tokenizer_test_data.h"

namespace lattice::testing {
namespace {

// Runs `body`, expects a lattice::Error, and checks that each of `fragments` is in its message.
template <typename Body>
void expect_error(Body&& body, const std::vector<std::string>& fragments) {
  try {
    body();
    ADD_FAILURE() << "expected a lattice::Error mentioning '" << fragments.front() << "'";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos) << "message: " << message << "\nmissing: " << fragment;
    }
  }
}

nlohmann::json small() { return bpe_tokenizer_json({"a", "b", "ab"}, {"a b"}); }

void load(const nlohmann::json& json) { Tokenizer::from_json(json.dump()); }

TEST(Malformed, SmallTokenizerIsValid) { EXPECT_NO_THROW(load(small())); }

TEST(Malformed, MissingModel) {
  auto json = small();
  json.erase("model");
  expect_error([&] { load(json); }, {"missing field 'model'"});
}

TEST(Malformed, NotJson) {
  expect_error([] { Tokenizer::from_json("{\"model\": "); }, {"invalid JSON"});
  expect_error([] { Tokenizer::from_json("[1, 2]"); }, {"expected a JSON object"});
}

TEST(Malformed, UnknownComponentTypesAreNamed) {
  auto json = small();
  json["model"]["type"] = "WordPiece";
  expect_error([&] { load(json); }, {"model", "unsupported model type 'WordPiece'"});

  json = small();
  json["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "BertNormalizer"}}}}};
  expect_error([&] { load(json); }, {"normalizer.normalizers[1]", "unsupported normalizer type 'BertNormalizer'"});

  json = small();
  json["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error([&] { load(json); }, {"pre_tokenizer", "'Whitespace'"});

  json = small();
  json["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_error([&] { load(json); }, {"post_processor", "'RobertaProcessing'"});

  json = small();
  json["decoder"] = {{"type", "WordPiece"}};
  expect_error([&] { load(json); }, {"decoder", "unsupported decoder type 'WordPiece'"});

  json = small();
  json["decoder"] = {{"decoders", nlohmann::json::array()}};
  expect_error([&] { load(json); }, {"decoder", "missing field 'type'"});
}

TEST(Malformed, BadMerges) {
  auto json = small();
  json["model"]["merges"] = {"a c"};
  expect_error([&] { load(json); }, {"merge 0", "'c' is not in the vocab"});

  json = bpe_tokenizer_json({"a", "b"}, {"a b"});
  expect_error([&] { load(json); }, {"result 'ab' is not in the vocab"});

  json = small();
  json["model"]["merges"] = {"a b c"};
  expect_error([&] { load(json); }, {"model.merges[0]", "exactly one space"});

  json = small();
  json["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a"})});
  expect_error([&] { load(json); }, {"model.merges[0]"});

  json = small();
  json["model"]["vocab"]["x"] = "seven";
  expect_error([&] { load(json); }, {"model.vocab.x", "expected a token id"});
}

TEST(Malformed, InvalidRegexNamesThePattern) {
  auto json = small();
  json["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(\\p{L}+"}}}, {"behavior", "Isolated"}, {"invert", false}};
  expect_error([&] { load(json); }, {"pre_tokenizer.pattern", "invalid regex '(\\p{L}+'"});

  json["pre_tokenizer"]["pattern"] = {{"Regex", "\\p{NotAProperty}"}};
  expect_error([&] { load(json); }, {"invalid regex"});

  json["pre_tokenizer"]["pattern"] = {{"Regex", "a"}};
  json["pre_tokenizer"]["behavior"] = "Sideways";
  expect_error([&] { load(json); }, {"unknown split behavior 'Sideways'"});
}

TEST(Malformed, UnknownTokensInModelAndConfig) {
  auto json = small();
  json["model"]["unk_token"] = "<unk>";
  expect_error([&] { load(json); }, {"unk_token '<unk>' is not in the vocab"});
  expect_error([&] { Tokenizer::from_json(small().dump(), R"({"bos_token": "<s>"})"); },
               {"bos_token '<s>' is not in the vocab"});
}

TEST(Malformed, TemplateReferencesUnknownSpecialToken) {
  auto json = small();
  json["post_processor"] = {{"type", "TemplateProcessing"},
                            {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}}},
                            {"special_tokens", nlohmann::json::object()}};
  expect_error([&] { load(json); }, {"special token '<s>' is not in special_tokens"});
}

TEST(Malformed, WrongJsonTypesAndHugeIds) {
  auto json = small();
  json["model"]["dropout"] = "high";
  expect_error([&] { load(json); }, {"unexpected JSON structure"});

  json = small();
  json["added_tokens"] = {added_token(2000000000, "<big>", true)};
  expect_error([&] { load(json); }, {"token id 2000000000 is implausibly large"});

  json = small();
  json["added_tokens"] = {{{"id", 3}, {"content", 5}}};
  expect_error([&] { load(json); }, {"added_tokens[0].content", "expected a string"});
}

TEST(Malformed, MissingDirectory) {
  expect_error([] { Tokenizer::from_dir("/nonexistent/model"); }, {"no tokenizer.json in /nonexistent/model"});
}

TEST(InvalidInput, EncodeRejectsInvalidUtf8WithTheOffset) {
  const Tokenizer& tokenizer = fixture_tokenizer("gpt2");
  expect_error([&] { tokenizer.encode("ok \xFF", false); }, {"not valid UTF-8", "0xff", "offset 3"});
  expect_error([&] { tokenizer.encode("\xE4\xB8", false); }, {"offset 0"});
  expect_error([&] { tokenizer.encode("\xED\xA0\x80", false); }, {"not valid UTF-8"});  // a surrogate
}

TEST(InvalidInput, DecodeRejectsIdsOutOfRange) {
  const Tokenizer& tokenizer = fixture_tokenizer("mistral");
  expect_error([&] { tokenizer.decode({1, 32000}); }, {"token id 32000 is out of range", "32000"});
  expect_error([&] { tokenizer.decode({-5}); }, {"token id -5"});
  expect_error([&] { tokenizer.id_to_token(40000); }, {"token id 40000"});
  EXPECT_FALSE(tokenizer.is_special(-1));
}

TEST(InvalidInput, DecodeRejectsIdsWithoutAToken) {
  auto json = small();
  json["added_tokens"] = {added_token(9, "<x>", true)};  // ids 3..8 are holes
  const Tokenizer tokenizer = Tokenizer::from_json(json.dump());
  EXPECT_EQ(tokenizer.vocab_size(), 10);
  expect_error([&] { tokenizer.decode({5}); }, {"token id 5 has no token"});
  IncrementalDetokenizer stream(tokenizer);
  EXPECT_THROW(stream.push(5), Error);
  EXPECT_EQ(stream.push(0), "a");  // the stream survived the bad id
  EXPECT_EQ(stream.push(2), " ab");  // no decoder: tokens are joined with spaces
  EXPECT_EQ(stream.flush(), "");
}

}  // namespace
}  // namespace lattice::testing
