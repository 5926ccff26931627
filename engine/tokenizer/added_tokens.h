// Added tokens (HF `added_tokens`): strings such as "<|im_start|>" that are cut out of the input
// before normalization and pre-tokenization and map straight to one id. Matching is leftmost,
// longest first, like HF's Aho-Corasick LeftmostLongest search.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lattice::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;  // matched against normalized text instead of the raw input
  bool lstrip = false;      // swallow whitespace on the left
  bool rstrip = false;      // swallow whitespace on the right
  bool single_word = false; // only match when not inside a word
};

// A run of input text, or one matched added token (token_id >= 0, text is what it covered).
struct Segment {
  std::string text;
  int32_t token_id = -1;
  bool at_input_start = false;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is the string that identifies `tokens[i]` in the text it is matched against.
  AddedTokenMatcher(const std::vector<std::string>& patterns, const std::vector<AddedToken>& tokens);

  bool empty() const { return nodes_.size() <= 1; }

  // Appends the segments of `text` to `out`; empty text runs are dropped.
  void split(std::string_view text, bool at_input_start, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token = -1;  // index into tokens_ when a pattern ends here
  };
  // Longest pattern starting at `pos`: (token index, length), or token index -1.
  std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos) const;
  bool accepts(std::string_view text, size_t begin, size_t end, const AddedToken& token) const;

  std::vector<Node> nodes_{1};
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace lattice::tokenizer
