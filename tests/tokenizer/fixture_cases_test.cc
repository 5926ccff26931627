// Every line of tests/data/tokenizers/<name>/cases.jsonl: ids, ids_with_special, decoded and
// decoded_with_special must match the reference exactly.
#include <gtest/gtest.h>

#include "tests/tokenizer/tokenizer_test_data.h"

namespace lattice::testing {
namespace {

class FixtureCases : public ::testing::TestWithParam<std::string> {
 protected:
  const Tokenizer& tokenizer() const { return fixture_tokenizer(GetParam()); }
  std::vector<nlohmann::json> cases() const { return read_jsonl(tokenizer_data_dir() + "/" + GetParam() + "/cases.jsonl"); }
};

TEST_P(FixtureCases, HasAllCases) { EXPECT_EQ(cases().size(), 184u); }

TEST_P(FixtureCases, IdsMatch) {
  for (const auto& row : cases()) {
    const auto want = row["ids"].get<std::vector<int32_t>>();
    const auto got = tokenizer().encode(row["text"].get<std::string>(), false);
    EXPECT_EQ(got, want) << "case " << row["name"] << ": got " << format_ids(got) << " want " << format_ids(want);
  }
}

TEST_P(FixtureCases, IdsWithSpecialMatch) {
  for (const auto& row : cases()) {
    const auto want = row["ids_with_special"].get<std::vector<int32_t>>();
    const auto got = tokenizer().encode(row["text"].get<std::string>(), true);
    EXPECT_EQ(got, want) << "case " << row["name"] << ": got " << format_ids(got) << " want " << format_ids(want);
  }
}

TEST_P(FixtureCases, TokensMatch) {
  for (const auto& row : cases()) {
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    const auto want = row["tokens"].get<std::vector<std::string>>();
    ASSERT_EQ(ids.size(), want.size()) << "case " << row["name"];
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(tokenizer().id_to_token(ids[i]), want[i]) << "case " << row["name"] << " token " << i;
      EXPECT_EQ(tokenizer().token_to_id(want[i]), ids[i]) << "case " << row["name"] << " token " << i;
    }
  }
}

TEST_P(FixtureCases, DecodedMatches) {
  for (const auto& row : cases()) {
    const auto ids = row["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer().decode(ids), row["decoded"].get<std::string>()) << "case " << row["name"];
    const auto ids_with_special = row["ids_with_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer().decode(ids_with_special), row["decoded_with_special"].get<std::string>())
        << "case " << row["name"];
  }
}

TEST_P(FixtureCases, RoundTripFlagAgrees) {
  for (const auto& row : cases()) {
    const std::string text = row["text"].get<std::string>();
    const bool round_trips = tokenizer().decode(tokenizer().encode(text, false)) == text;
    EXPECT_EQ(round_trips, row["roundtrip_ok"].get<bool>()) << "case " << row["name"];
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureCases, ::testing::Values("gpt2", "qwen3", "mistral"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lattice::testing
