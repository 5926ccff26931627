// The text of one generated choice as tokens arrive: incremental detokenization, stop strings (held back
// while they might still match, cut where they do), and the log-probabilities in both OpenAI shapes.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler/sampler.h"
#include "engine/tokenizer/tokenizer.h"

namespace lattice::serve {

// Finds stop strings in streamed text. push() returns the text that can no longer be part of a match.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string push(const std::string& text);
  std::string flush();  // what is still held back (no stop string matched)
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool matched_ = false;
};

// The text of one id; "" for an id the tokenizer does not have (a model vocabulary padded past the
// tokenizer's), as HF decodes it.
std::string token_text(const Tokenizer& tokenizer, int32_t id);

// Ids without a token add no text (and count as tokens).
class ChoiceText {
 public:
  ChoiceText(const Tokenizer& tokenizer, std::vector<std::string> stops)
      : tokenizer_(tokenizer), detokenizer_(tokenizer), stop_(std::move(stops)) {}
  // Text released by this token (possibly empty). Once a stop string matched, further tokens add nothing.
  std::string push(const SampledToken& token);
  std::string finish();  // the held-back remainder at the end of the choice
  bool stopped() const { return stop_.matched(); }
  int64_t num_tokens() const { return num_tokens_; }
  const std::string& text() const { return text_; }

  // Log-probabilities of the tokens pushed since the last call (one streamed chunk's worth).
  std::vector<SampledToken> take_logprob_tokens();

 private:
  Tokenizer tokenizer_;
  IncrementalDetokenizer detokenizer_;
  StopMatcher stop_;
  std::string text_;
  int64_t num_tokens_ = 0;
  std::vector<SampledToken> untaken_;
};

// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} (/v1/completions).
nlohmann::ordered_json completion_logprobs(const Tokenizer& tokenizer, const std::vector<SampledToken>& tokens,
                                   int32_t top, int64_t text_offset);
// {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]} (/v1/chat/completions).
nlohmann::ordered_json chat_logprobs(const Tokenizer& tokenizer, const std::vector<SampledToken>& tokens, int32_t top);

}  // namespace lattice::serve
