#include "engine/core/error.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_impl.h"

namespace lattice {

// Windowed decoding: window_ = [context ids | ids since the last character boundary]. The text
// emitted for a push is what decode(window_) gained past emitted_. Keeping the previous group as
// context gives position-dependent decoders (Strip's leading space, Metaspace's first token) the
// same view on both sides of the difference. Whenever the window ends on a character boundary
// (nothing pending), the older context is dropped.

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  const tokenizer::TokenizerImpl& impl = *tokenizer_.impl_;
  // Validate before touching the state so that a bad id leaves the stream usable.
  tokenizer_.id_to_token(id);  // throws for an id out of range or without a token
  window_.push_back(id);
  std::string pending;
  const std::string text = impl.decode(window_, skip_special_tokens_, &pending);
  std::string chunk;
  if (text.size() > emitted_.size()) {
    if (text.compare(0, emitted_.size(), emitted_) == 0) {
      chunk = text.substr(emitted_.size());
    } else {
      // Earlier text of the window changed, which only an ill-formed byte run can cause. Resume
      // at the next character boundary past what was emitted so the output stays valid UTF-8.
      size_t cut = emitted_.size();
      while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
      chunk = text.substr(cut);
    }
    emitted_ = text;
  }
  if (pending.empty()) {
    window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(context_));
    context_ = window_.size();
    emitted_ = impl.decode(window_, skip_special_tokens_);
  }
  return chunk;
}

std::string IncrementalDetokenizer::flush() {
  std::string rest;
  if (!window_.empty()) {
    const std::string text = tokenizer_.decode(window_, skip_special_tokens_);
    if (text.size() > emitted_.size() && text.compare(0, emitted_.size(), emitted_) == 0) {
      rest = text.substr(emitted_.size());
    }
  }
  window_.clear();
  emitted_.clear();
  context_ = 0;
  return rest;
}

}  // namespace lattice
