#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace lattice {

// Mirrors HF tokenizers' step_decode_stream: decode a small window of recent ids, emit what the
// window's text gained since the last emission, and keep the last emitted ids as context so that
// position-dependent decoders (Strip, Metaspace, leading "▁") see the same neighbourhood.

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  // Validate before touching the state so a bad id leaves the stream usable.
  tokenizer_.decode(std::vector<int32_t>{id}, skip_special_tokens_);
  if (prefix_.empty() && !window_.empty()) {
    std::string text = tokenizer_.decode(window_, skip_special_tokens_);
    if (!tokenizer::ends_with(text, tokenizer::kReplacementChar)) {
      prefix_ = std::move(text);
      prefix_index_ = window_.size();
    }
  }
  window_.push_back(id);
  const std::string text = tokenizer_.decode(window_, skip_special_tokens_);
  if (text.size() <= prefix_.size() || tokenizer::ends_with(text, tokenizer::kReplacementChar)) return {};
  std::string chunk;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    chunk = text.substr(prefix_.size());
  } else {
    // The window's earlier text changed (only possible after ill-formed byte runs). Emit the
    // new tail from the first character boundary past the old prefix so output stays valid UTF-8.
    size_t cut = prefix_.size();
    while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
    chunk = text.substr(cut);
  }
  const size_t consumed = window_.size() - prefix_index_;
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.decode(window_, skip_special_tokens_);
  prefix_index_ = consumed;
  return chunk;
}

std::string IncrementalDetokenizer::flush() {
  std::string rest;
  if (!window_.empty()) {
    const std::string text = tokenizer_.decode(window_, skip_special_tokens_);
    if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0) rest = text.substr(prefix_.size());
  }
  window_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace lattice
