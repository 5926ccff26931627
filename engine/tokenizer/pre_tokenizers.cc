#include "engine/tokenizer/pre_tokenizers.h"

#include <utf8proc.h>

#include <algorithm>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {
namespace {

// The regex HF's ByteLevel pre-tokenizer uses when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Span {
  size_t begin, end;
  bool is_match;
};

}  // namespace

void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                 bool invert, std::vector<Piece>& out) {
  const std::string& text = piece.text;
  // Alternating spans of non-matching and matching text, as HF's find_matches produces them.
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t previous = 0;
  for (const auto& [begin, end] : matches) {
    if (begin != previous) spans.push_back({previous, begin, invert});
    spans.push_back({begin, end, !invert});
    previous = end;
  }
  if (previous != text.size()) spans.push_back({previous, text.size(), invert});

  std::vector<Span> merged;
  merged.reserve(spans.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      merged = std::move(spans);
      break;
    case SplitBehavior::kRemoved:
      for (const Span& span : spans) {
        if (!span.is_match) merged.push_back(span);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& span : spans) {
        if (span.is_match && !previous_match && !merged.empty()) {
          merged.back().end = span.end;
        } else {
          merged.push_back(span);
        }
        previous_match = span.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().begin = it->begin;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Span& span : spans) {
        if (span.is_match == previous_match && !merged.empty()) {
          merged.back().end = span.end;
        } else {
          merged.push_back(span);
        }
        previous_match = span.is_match;
      }
      break;
    }
  }
  for (const Span& span : merged) {
    if (span.end > span.begin) {
      out.push_back({text.substr(span.begin, span.end - span.begin), piece.at_input_start && span.begin == 0});
    }
  }
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}

void ByteLevelPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  std::vector<std::pair<size_t, size_t>> matches;
  for (Piece& piece : pieces) {
    if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) piece.text.insert(0, " ");
    const size_t first = out.size();
    if (regex_) {
      matches.clear();
      regex_->find_all(piece.text, matches);
      split_piece(piece, matches, SplitBehavior::kIsolated, false, out);
    } else if (!piece.text.empty()) {
      out.push_back(std::move(piece));
    }
    for (size_t i = first; i < out.size(); ++i) out[i].text = alphabet.encode(out[i].text);
  }
  pieces = std::move(out);
}

void SplitPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  std::vector<std::pair<size_t, size_t>> matches;
  for (const Piece& piece : pieces) {
    matches.clear();
    pattern_.find_all(piece.text, matches);
    split_piece(piece, matches, behavior_, invert_, out);
  }
  pieces = std::move(out);
}

void MetaspacePreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  std::vector<std::pair<size_t, size_t>> matches;
  for (Piece& piece : pieces) {
    std::string text;
    text.reserve(piece.text.size() + replacement_.size());
    for (const char c : piece.text) {
      if (c == ' ') {
        text += replacement_;
      } else {
        text += c;
      }
    }
    const bool starts_with_replacement = text.compare(0, replacement_.size(), replacement_) == 0;
    const bool prepend = scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && piece.at_input_start);
    if (prepend && !starts_with_replacement) text.insert(0, replacement_);
    Piece replaced{std::move(text), piece.at_input_start};
    if (!split_) {
      if (!replaced.text.empty()) out.push_back(std::move(replaced));
      continue;
    }
    matches.clear();
    size_t pos = 0;
    while ((pos = replaced.text.find(replacement_, pos)) != std::string::npos) {
      matches.emplace_back(pos, pos + replacement_.size());
      pos += replacement_.size();
    }
    split_piece(replaced, matches, SplitBehavior::kMergedWithNext, false, out);
  }
  pieces = std::move(out);
}

void DigitsPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  std::vector<std::pair<size_t, size_t>> matches;
  for (const Piece& piece : pieces) {
    matches.clear();
    size_t pos = 0;
    while (pos < piece.text.size()) {
      const size_t begin = pos;
      const char32_t cp = next_codepoint(piece.text, pos);
      const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      if (category == UTF8PROC_CATEGORY_ND || category == UTF8PROC_CATEGORY_NL || category == UTF8PROC_CATEGORY_NO) {
        matches.emplace_back(begin, pos);
      }
    }
    split_piece(piece, matches, individual_digits_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false,
                out);
  }
  pieces = std::move(out);
}

}  // namespace lattice::tokenizer
