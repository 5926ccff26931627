// PCRE2-backed regex with the semantics HF tokenizers get from Oniguruma: UTF-8, Unicode
// properties (\p{L}, \p{N}), look-ahead, and \s meaning Unicode White_Space (it includes U+0085
// NEL and excludes U+FEFF BOM).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lattice::tokenizer {

// Rewrites \s / \S (outside and inside character classes) to \p{White_Space} / \P{White_Space}.
std::string translate_whitespace_classes(std::string_view pattern);

class Regex {
 public:
  // Throws lattice::Error naming the pattern, the offset and PCRE2's message when it does not compile.
  explicit Regex(std::string_view pattern);

  // Byte ranges [begin, end) of the successive non-overlapping, non-empty matches in `text`.
  // `text` must be valid UTF-8 (the caller validates once; PCRE2's per-call check is skipped).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace lattice::tokenizer
