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

std::string prepended(std::string_view prefix, std::string_view text) {
  std::string out;
  out.reserve(prefix.size() + text.size());
  out.append(prefix);
  out.append(text);
  return out;
}

struct Span {
  size_t begin, end;
  bool is_match;
};

}  // namespace

void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                 bool invert, const PieceSink& sink) {
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
  Piece part;
  for (const Span& span : merged) {
    if (span.end > span.begin) {
      part.text.assign(text, span.begin, span.end - span.begin);
      part.at_input_start = piece.at_input_start && span.begin == 0;
      sink(part);
    }
  }
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}

void ByteLevelPreTokenizer::pre_tokenize(Piece& piece, const PieceSink& sink) const {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) piece.text = prepended(" ", piece.text);
  Piece mapped;
  if (!regex_) {
    if (piece.text.empty()) return;
    alphabet.encode_into(piece.text, mapped.text);
    mapped.at_input_start = piece.at_input_start;
    sink(mapped);
    return;
  }
  // Map each regex match straight into the alphabet, without an intermediate copy.
  std::vector<std::pair<size_t, size_t>> matches;
  regex_->find_all(piece.text, matches);
  const std::string_view text = piece.text;
  size_t previous = 0;
  auto emit = [&](size_t begin, size_t end) {
    mapped.text.clear();
    alphabet.encode_into(text.substr(begin, end - begin), mapped.text);
    mapped.at_input_start = piece.at_input_start && begin == 0;
    sink(mapped);
  };
  for (const auto& [begin, end] : matches) {
    if (begin != previous) emit(previous, begin);
    emit(begin, end);
    previous = end;
  }
  if (previous != text.size()) emit(previous, text.size());
}

void SplitPreTokenizer::pre_tokenize(Piece& piece, const PieceSink& sink) const {
  std::vector<std::pair<size_t, size_t>> matches;
  pattern_.find_all(piece.text, matches);
  split_piece(piece, matches, behavior_, invert_, sink);
}

void MetaspacePreTokenizer::pre_tokenize(Piece& piece, const PieceSink& sink) const {
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
  if (prepend && !starts_with_replacement) text = prepended(replacement_, text);
  Piece replaced{std::move(text), piece.at_input_start};
  if (!split_) {
    if (!replaced.text.empty()) sink(replaced);
    return;
  }
  std::vector<std::pair<size_t, size_t>> matches;
  size_t pos = 0;
  while ((pos = replaced.text.find(replacement_, pos)) != std::string::npos) {
    matches.emplace_back(pos, pos + replacement_.size());
    pos += replacement_.size();
  }
  split_piece(replaced, matches, SplitBehavior::kMergedWithNext, false, sink);
}

void DigitsPreTokenizer::pre_tokenize(Piece& piece, const PieceSink& sink) const {
  std::vector<std::pair<size_t, size_t>> matches;
  size_t pos = 0;
  while (pos < piece.text.size()) {
    const size_t begin = pos;
    const char32_t cp = next_codepoint(piece.text, pos);
    const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    if (category == UTF8PROC_CATEGORY_ND || category == UTF8PROC_CATEGORY_NL || category == UTF8PROC_CATEGORY_NO) {
      matches.emplace_back(begin, pos);
    }
  }
  split_piece(piece, matches, individual_digits_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false, sink);
}

void SequencePreTokenizer::run(size_t step, Piece& piece, const PieceSink& sink) const {
  if (step == steps_.size()) {
    sink(piece);
    return;
  }
  auto next = [&](Piece& part) { run(step + 1, part, sink); };
  steps_[step]->pre_tokenize(piece, PieceSink(next));
}

}  // namespace lattice::tokenizer
