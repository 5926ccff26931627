// The loaded pipeline behind lattice::Tokenizer (internal to engine/tokenizer).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/decoders.h"
#include "engine/tokenizer/normalizers.h"
#include "engine/tokenizer/post_processors.h"
#include "engine/tokenizer/pre_tokenizers.h"

namespace lattice::tokenizer {

struct TokenizerImpl {
  std::unique_ptr<Normalizer> normalizer;        // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;   // may be null
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor; // may be null
  std::unique_ptr<Decoder> decoder;              // may be null: tokens are joined with spaces

  std::vector<AddedToken> added_tokens;
  AddedTokenMatcher raw_matcher;         // added tokens with normalized == false
  AddedTokenMatcher normalized_matcher;  // added tokens with normalized == true

  std::vector<std::string> id_to_token;  // "" marks an id without a token
  std::vector<bool> has_token;
  std::vector<bool> special;

  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  bool force_bos = false;  // tokenizer_config add_bos_token: true
  bool force_eos = false;  // tokenizer_config add_eos_token: true

  // Fills id_to_token / has_token / special and the matchers from model and added_tokens.
  void index_tokens();

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // With `pending_tail`, a trailing incomplete UTF-8 sequence is returned there, not as U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens, std::string* pending_tail = nullptr) const;
};

}  // namespace lattice::tokenizer
