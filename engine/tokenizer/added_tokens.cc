#include "engine/tokenizer/added_tokens.h"

#include <utf8proc.h>

#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {
namespace {

bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

bool is_word_char(char32_t cp) {
  if (cp == '_') return true;
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO) ||
         (category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO);
}

// Start of the code point that ends just before `pos`.
size_t previous_char_start(std::string_view text, size_t pos) {
  do {
    --pos;
  } while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80);
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<std::string>& patterns, const std::vector<AddedToken>& tokens)
    : tokens_(tokens) {
  for (size_t t = 0; t < patterns.size(); ++t) {
    const std::string& pattern = patterns[t];
    if (pattern.empty()) continue;
    int32_t node = 0;
    for (const char c : pattern) {
      const auto byte = static_cast<unsigned char>(c);
      int32_t child = -1;
      for (const auto& [label, index] : nodes_[node].children) {
        if (label == byte) child = index;
      }
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(byte, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    // Two tokens with the same text: the first one wins.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
    first_byte_[static_cast<unsigned char>(pattern[0])] = true;
  }
}

std::pair<int32_t, size_t> AddedTokenMatcher::longest_at(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [label, index] : nodes_[node].children) {
      if (label == byte) {
        child = index;
        break;
      }
    }
    if (child < 0) break;
    node = child;
    if (nodes_[node].token >= 0) best = {nodes_[node].token, i + 1 - pos};
  }
  return best;
}

bool AddedTokenMatcher::accepts(std::string_view text, size_t begin, size_t end, const AddedToken& token) const {
  if (!token.single_word) return true;
  if (begin > 0) {
    size_t p = previous_char_start(text, begin);
    if (is_word_char(next_codepoint(text, p))) return false;
  }
  if (end < text.size()) {
    size_t p = end;
    if (is_word_char(next_codepoint(text, p))) return false;
  }
  return true;
}

void AddedTokenMatcher::split(std::string_view text, bool at_input_start, std::vector<Segment>& out) const {
  size_t emitted = 0;  // end of the text already handed out
  size_t pos = 0;
  auto emit_text = [&](size_t end) {
    if (end > emitted) out.push_back({std::string(text.substr(emitted, end - emitted)), -1, at_input_start && emitted == 0});
  };
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [index, length] = longest_at(text, pos);
    if (index < 0 || !accepts(text, pos, pos + length, tokens_[index])) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t begin = pos, end = pos + length;
    if (token.lstrip) {
      while (begin > emitted) {
        size_t p = previous_char_start(text, begin);
        const size_t char_start = p;
        if (!is_white_space(next_codepoint(text, p))) break;
        begin = char_start;
      }
    }
    if (token.rstrip) {
      while (end < text.size()) {
        size_t p = end;
        if (!is_white_space(next_codepoint(text, p))) break;
        end = p;
      }
    }
    emit_text(begin);
    out.push_back({std::string(text.substr(begin, end - begin)), token.id, at_input_start && begin == 0});
    emitted = pos = end;
  }
  emit_text(text.size());
}

}  // namespace lattice::tokenizer
