// Normalizers: rewrite a text segment before pre-tokenization (HF `normalizer` section).
// Offsets are not tracked: Lattice needs ids, not alignments.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/tokenizer/regex.h"

namespace lattice::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };

// Unicode normalization through utf8proc.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void normalize(std::string& text) const override;

 private:
  std::string normalize_run(std::string_view text) const;
  UnicodeForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override;
};

// Prepends a fixed string to every non-empty segment (SentencePiece-style "▁").
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override;

 private:
  std::string prefix_;
};

// A literal string or a regex; used by the Replace normalizer and decoder and the Split pre-tokenizer.
class Pattern {
 public:
  static Pattern literal(std::string text);
  static Pattern regex(std::string_view pattern);

  // Appends the byte ranges of the non-overlapping, non-empty matches in `text`.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;
  // Replaces every match by `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::optional<Regex> regex_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = pattern_.replace_all(text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace lattice::tokenizer
