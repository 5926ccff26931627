// Decoders (HF `decoder` section): turn the token strings of a sequence back into text. Each
// decoder rewrites the list of token strings, as HF's decode_chain does; the final text is their
// concatenation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/tokenizer/normalizers.h"
#include "engine/tokenizer/pre_tokenizers.h"

namespace lattice::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // With `pending_tail` (streaming), byte-producing decoders move a trailing incomplete UTF-8
  // sequence there instead of turning it into U+FFFD; otherwise it is null.
  virtual void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const = 0;
};

// Maps GPT-2 alphabet characters back to bytes and joins everything into one lossy UTF-8 string.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override;

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of "<0xNN>" tokens become the bytes they name; an ill-formed run becomes one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override;
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override;
};

// Removes up to `start` leading and `stop` trailing `content` characters from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override;

 private:
  char32_t content_;
  size_t start_;
  size_t stop_;
};

// Replacement character -> space; dropped in the first token unless the prepend scheme is "never".
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme) : replacement_(std::move(replacement)), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override;

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const override {
    for (const auto& step : steps_) step->decode_chain(tokens, pending_tail);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace lattice::tokenizer
