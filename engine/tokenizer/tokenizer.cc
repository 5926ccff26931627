#include "engine/tokenizer/tokenizer.h"

#include "engine/core/error.h"
#include "engine/tokenizer/json_loader.h"
#include "engine/tokenizer/tokenizer_impl.h"
#include "engine/tokenizer/utf8.h"

namespace lattice {
namespace tokenizer {

void TokenizerImpl::index_tokens() {
  // Ids index dense tables; a stray huge id would otherwise allocate gigabytes.
  constexpr int32_t kMaxTokenId = 1 << 24;
  int32_t size = 0;
  for (const auto& [token, id] : model->vocab()) size = std::max(size, id + 1);
  for (const AddedToken& token : added_tokens) size = std::max(size, token.id + 1);
  LATTICE_CHECK(size <= kMaxTokenId, "token id ", size - 1, " is implausibly large (the limit is ", kMaxTokenId - 1, ")");
  id_to_token.assign(static_cast<size_t>(size), std::string());
  has_token.assign(static_cast<size_t>(size), false);
  special.assign(static_cast<size_t>(size), false);
  for (const auto& [token, id] : model->vocab()) {
    id_to_token[id] = token;
    has_token[id] = true;
  }
  // Added tokens take precedence when decoding, as in HF.
  std::vector<std::string> raw_patterns, normalized_patterns;
  std::vector<AddedToken> raw_tokens, normalized_tokens;
  for (const AddedToken& token : added_tokens) {
    id_to_token[token.id] = token.content;
    has_token[token.id] = true;
    special[token.id] = token.special;
    if (token.normalized) {
      // A normalized token is looked for in normalized text, so its own text is normalized too.
      std::string pattern = token.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_patterns.push_back(std::move(pattern));
      normalized_tokens.push_back(token);
    } else {
      raw_patterns.push_back(token.content);
      raw_tokens.push_back(token);
    }
  }
  raw_matcher = AddedTokenMatcher(raw_patterns, raw_tokens);
  normalized_matcher = AddedTokenMatcher(normalized_patterns, normalized_tokens);
}

std::vector<int32_t> TokenizerImpl::encode(std::string_view text, bool add_special_tokens) const {
  check_utf8(text, "text to encode");
  std::vector<Segment> raw_segments;
  raw_matcher.split(text, true, raw_segments);

  std::vector<Segment> segments;
  segments.reserve(raw_segments.size());
  for (Segment& segment : raw_segments) {
    if (segment.token_id >= 0) {
      segments.push_back(std::move(segment));
      continue;
    }
    if (normalizer) normalizer->normalize(segment.text);
    normalized_matcher.split(segment.text, segment.at_input_start, segments);
  }

  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  auto tokenize_piece = [&](Piece& piece) { model->tokenize(piece.text, ids); };
  for (Segment& segment : segments) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
      continue;
    }
    Piece piece{std::move(segment.text), segment.at_input_start};
    if (pre_tokenizer) {
      pre_tokenizer->pre_tokenize(piece, PieceSink(tokenize_piece));
    } else {
      tokenize_piece(piece);
    }
  }

  if (add_special_tokens) {
    if (post_processor) post_processor->add_special_tokens(ids);
    if (force_bos && bos_id && (ids.empty() || ids.front() != *bos_id)) ids.insert(ids.begin(), *bos_id);
    if (force_eos && eos_id && (ids.empty() || ids.back() != *eos_id)) ids.push_back(*eos_id);
  }
  return ids;
}

std::string TokenizerImpl::decode(std::span<const int32_t> ids, bool skip_special_tokens, std::string* pending_tail) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    LATTICE_CHECK(id >= 0 && static_cast<size_t>(id) < id_to_token.size(), "token id ", id,
                  " is out of range for a vocab of ", id_to_token.size());
    LATTICE_CHECK(has_token[id], "token id ", id, " has no token in this vocab");
    if (skip_special_tokens && special[id]) continue;
    tokens.push_back(id_to_token[id]);
  }
  if (!decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  decoder->decode_chain(tokens, pending_tail);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

}  // namespace tokenizer

Tokenizer::Tokenizer(std::shared_ptr<const tokenizer::TokenizerImpl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_dir(const std::string& model_dir) {
  return Tokenizer(tokenizer::load_tokenizer_dir(model_dir));
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json) {
  return Tokenizer(tokenizer::load_tokenizer(tokenizer_json, tokenizer_config_json, "tokenizer.json"));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const tokenizer::AddedToken& added : impl_->added_tokens) {
    if (added.content == token) return added.id;
  }
  return impl_->model->token_to_id(token);
}

bool Tokenizer::has_token(int32_t id) const { return id >= 0 && id < vocab_size() && impl_->has_token[id]; }

const std::string& Tokenizer::id_to_token(int32_t id) const {
  LATTICE_CHECK(has_token(id), "token id ", id,
                " is out of range or has no token (vocab size ", vocab_size(), ")");
  return impl_->id_to_token[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

}  // namespace lattice
