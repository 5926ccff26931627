#include "launcher/serve/openai_session.h"

#include <algorithm>
#include <atomic>
#include <ctime>

#include "launcher/serve/api_error.h"

namespace lattice::serve {

using json = nlohmann::ordered_json;

std::string sse_frame(const json& data) { return "data: " + json_text(data) + "\n\n"; }

namespace {

std::string make_id(bool chat) {
  static std::atomic<uint64_t> counter{0};
  return std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(std::time(nullptr)) + "-" + std::to_string(++counter);
}

}  // namespace

ApiSession::ApiSession(ApiRequest request, EngineBridge& bridge, const Tokenizer& tokenizer, std::string model_name)
    : request_(std::move(request)), bridge_(bridge), tokenizer_(tokenizer), model_name_(std::move(model_name)),
      id_(make_id(request_.chat)), created_(std::time(nullptr)) {
  for (int i = 0; i < request_.n; ++i) choices_.emplace_back(ChoiceText(tokenizer_, request_.stop));
}

ApiSession::~ApiSession() { cancel(); }

void ApiSession::cancel() {
  if (stream_) bridge_.cancel(*stream_);
}

void ApiSession::start() {
  std::vector<Request> requests;
  for (int i = 0; i < request_.n; ++i) {
    Request r;
    r.prompt = request_.prompt_ids;
    r.params = request_.params;
    if (r.params.seed && i > 0) *r.params.seed += static_cast<uint64_t>(i);  // n choices with a seed still differ
    r.priority = request_.priority;
    requests.push_back(std::move(r));
  }
  try {
    stream_ = bridge_.submit(std::move(requests));
  } catch (const Overloaded& e) {
    throw ApiError(429, "rate_limit_error", e.what(), {}, "queue_full");
  } catch (const Unavailable& e) {
    throw ApiError(503, "service_unavailable", e.what(), {}, "engine_failed");
  }
}

ApiError ApiSession::error() const {
  if (error_status_ >= 500) return ApiError(error_status_, "server_error", error_);
  return ApiError(error_status_, "invalid_request_error", error_);
}

bool ApiSession::all_done() const {
  for (const Choice& c : choices_)
    if (!c.done) return false;
  return true;
}

json ApiSession::usage() const {
  int64_t completion = 0;
  for (const Choice& c : choices_) completion += c.text.num_tokens();
  const int64_t prompt = static_cast<int64_t>(request_.prompt_ids.size());
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached_tokens_}}}};
}

json ApiSession::chunk(int index, const std::string& text, const std::vector<SampledToken>& lp_tokens,
                       const std::string& finish_reason, bool first) {
  json choice = {{"index", index}};
  const json finish = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  if (request_.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = delta;
    choice["logprobs"] = request_.logprobs ? chat_logprobs(tokenizer_, lp_tokens, request_.top_logprobs) : json(nullptr);
  } else {
    choice["text"] = text;
    const int64_t offset = static_cast<int64_t>(choices_[index].text.text().size() - text.size());
    choice["logprobs"] =
        request_.logprobs ? completion_logprobs(tokenizer_, lp_tokens, request_.top_logprobs, offset) : json(nullptr);
  }
  choice["finish_reason"] = finish;
  return {{"id", id_}, {"object", request_.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_},
          {"model", model_name_}, {"choices", json::array({choice})}};
}

std::string ApiSession::apply(const ChoiceEvent& e) {
  Choice& c = choices_.at(e.index);
  if (c.done) return "";
  if (!e.error.empty()) {
    error_ = e.error;
    error_status_ = e.status;
    for (Choice& other : choices_) other.done = true;
    cancel();
    return "";
  }
  cached_tokens_ = std::max(cached_tokens_, e.cached_tokens);
  std::string text = e.token ? c.text.push(*e.token) : "";
  if (c.text.stopped()) {
    c.finish_reason = "stop";
    bridge_.cancel_choice(*stream_, e.index);  // the engine keeps going otherwise
  } else if (e.finish == FinishReason::stop || e.finish == FinishReason::length) {
    c.finish_reason = finish_reason_name(e.finish);
  } else if (e.finish == FinishReason::cancelled) {
    c.finish_reason = "abort";
  }
  if (!c.finish_reason.empty()) {
    text += c.text.finish();
    c.done = true;
  }
  if (!request_.stream) return "";
  std::vector<SampledToken> lp = c.text.take_logprob_tokens();
  const bool first = request_.chat && !c.sent_role;
  if (text.empty() && c.finish_reason.empty() && !first && !request_.logprobs) return "";
  c.sent_role = true;
  return sse_frame(chunk(e.index, text, lp, c.finish_reason, first));
}

std::optional<json> ApiSession::wait_result(std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (!all_done()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (std::optional<ChoiceEvent> e = stream_->next(left)) apply(*e);
  }
  if (!error_.empty()) throw error();
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    Choice& c = choices_[i];
    std::vector<SampledToken> lp = c.text.take_logprob_tokens();
    json choice = {{"index", i}};
    if (request_.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text.text()}};
      choice["logprobs"] = request_.logprobs ? chat_logprobs(tokenizer_, lp, request_.top_logprobs) : json(nullptr);
    } else {
      choice["text"] = c.text.text();
      choice["logprobs"] = request_.logprobs ? completion_logprobs(tokenizer_, lp, request_.top_logprobs, 0) : json(nullptr);
    }
    choice["finish_reason"] = c.finish_reason;
    choices.push_back(choice);
  }
  return json{{"id", id_}, {"object", request_.chat ? "chat.completion" : "text_completion"}, {"created", created_},
              {"model", model_name_}, {"choices", choices}, {"usage", usage()}};
}

std::optional<std::string> ApiSession::next_frames(std::chrono::milliseconds wait) {
  if (finished_) return std::nullopt;
  std::string frames;
  const auto until = std::chrono::steady_clock::now() + wait;
  while (!all_done()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    std::optional<ChoiceEvent> e = stream_->next(frames.empty() ? std::max(left, std::chrono::milliseconds(0))
                                                                : std::chrono::milliseconds(0));
    if (!e) return frames;
    frames += apply(*e);
  }
  if (!error_.empty()) {
    frames += sse_frame(error_body(error()));
  } else if (request_.include_usage) {
    frames += sse_frame({{"id", id_}, {"object", request_.chat ? "chat.completion.chunk" : "text_completion"},
                         {"created", created_}, {"model", model_name_}, {"choices", json::array()}, {"usage", usage()}});
  }
  finished_ = true;
  return frames + "data: [DONE]\n\n";
}

}  // namespace lattice::serve
