#include "launcher/serve/choice_text.h"

#include <algorithm>

namespace lattice::serve {

using json = nlohmann::ordered_json;

std::string StopMatcher::push(const std::string& text) {
  if (matched_) return "";
  pending_ += text;
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    matched_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail of pending_ that is a prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_)
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len)
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  std::string out = matched_ ? "" : pending_;
  pending_.clear();
  return out;
}

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  return tokenizer.has_token(id) ? tokenizer.decode(std::vector<int32_t>{id}) : std::string();
}

std::string ChoiceText::push(const SampledToken& token) {
  if (stopped()) return "";
  ++num_tokens_;
  untaken_.push_back(token);
  std::string out = stop_.push(tokenizer_.has_token(token.token) ? detokenizer_.push(token.token) : "");
  text_ += out;
  return out;
}

std::string ChoiceText::finish() {
  std::string out = stopped() ? "" : stop_.push(detokenizer_.flush());
  out += stop_.flush();
  text_ += out;
  return out;
}

std::vector<SampledToken> ChoiceText::take_logprob_tokens() {
  std::vector<SampledToken> out;
  out.swap(untaken_);
  return out;
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

json completion_logprobs(const Tokenizer& tokenizer, const std::vector<SampledToken>& tokens, int32_t top,
                         int64_t text_offset) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const SampledToken& t : tokens) {
    const std::string text = token_text(tokenizer, t.token);
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(t.logprob);
    json alternatives = json::object();
    for (size_t i = 0; i < t.top.size() && static_cast<int32_t>(i) < top; ++i)
      alternatives[token_text(tokenizer, t.top[i].token)] = t.top[i].logprob;
    out["top_logprobs"].push_back(top > 0 ? alternatives : json(nullptr));
    out["text_offset"].push_back(text_offset);
    text_offset += static_cast<int64_t>(text.size());
  }
  return out;
}

json chat_logprobs(const Tokenizer& tokenizer, const std::vector<SampledToken>& tokens, int32_t top) {
  json content = json::array();
  for (const SampledToken& t : tokens) {
    const std::string text = token_text(tokenizer, t.token);
    json alternatives = json::array();
    for (size_t i = 0; i < t.top.size() && static_cast<int32_t>(i) < top; ++i) {
      const std::string alt = token_text(tokenizer, t.top[i].token);
      alternatives.push_back({{"token", alt}, {"logprob", t.top[i].logprob}, {"bytes", bytes_of(alt)}});
    }
    content.push_back({{"token", text}, {"logprob", t.logprob}, {"bytes", bytes_of(text)}, {"top_logprobs", alternatives}});
  }
  return {{"content", content}};
}

}  // namespace lattice::serve
