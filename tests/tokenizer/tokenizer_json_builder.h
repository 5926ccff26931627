// Small in-memory tokenizer.json documents for component tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lattice::testing {

// A BPE tokenizer.json over `vocab` (ids in order) and "a b" merges, with no pipeline sections;
// tests add normalizer / pre_tokenizer / decoder / ... as they need.
inline nlohmann::json bpe_tokenizer_json(const std::vector<std::string>& vocab, const std::vector<std::string>& merges) {
  nlohmann::json vocab_json = nlohmann::json::object();
  for (size_t i = 0; i < vocab.size(); ++i) vocab_json[vocab[i]] = static_cast<int>(i);
  return {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", nullptr},
      {"model", {{"type", "BPE"}, {"vocab", vocab_json}, {"merges", merges}}},
  };
}

inline nlohmann::json added_token(int id, const std::string& content, bool special) {
  return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", !special}, {"special", special}};
}

}  // namespace lattice::testing
