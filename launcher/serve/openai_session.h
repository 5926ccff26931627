// One OpenAI API request in flight: submits its n choices through the EngineBridge and turns their events
// into the response body, or into Server-Sent Events frames when streaming. Runs on a front-end thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher/serve/api_error.h"
#include "launcher/serve/choice_text.h"
#include "launcher/serve/engine_bridge.h"
#include "launcher/serve/openai_request.h"

namespace lattice::serve {

class ApiSession {
 public:
  // `request.prompt_ids` must be filled (text tokenized, chat rendered) and checked against the model.
  ApiSession(ApiRequest request, EngineBridge& bridge, const Tokenizer& tokenizer, std::string model_name);
  ~ApiSession();  // cancels whatever has not finished (a client that went away)

  // Queues the choices; throws ApiError 429 when the server is over its bound.
  void start();

  // Non-streaming: the response body once every choice has ended, or nullopt if that takes longer than
  // `wait`. Throws ApiError 400 when the engine rejected the request.
  std::optional<nlohmann::ordered_json> wait_result(std::chrono::milliseconds wait);

  // Streaming: the SSE frames produced within `wait` ("" if none yet); nullopt once "data: [DONE]" was sent.
  std::optional<std::string> next_frames(std::chrono::milliseconds wait);

  void cancel();

 private:
  struct Choice {
    explicit Choice(ChoiceText t) : text(std::move(t)) {}
    ChoiceText text;
    bool done = false;
    bool sent_role = false;
    std::string finish_reason;
  };
  // Applies one event; returns the streamed frame it produces (may be "").
  std::string apply(const ChoiceEvent& event);
  nlohmann::ordered_json chunk(int index, const std::string& text, const std::vector<SampledToken>& logprob_tokens,
                       const std::string& finish_reason, bool first);
  nlohmann::ordered_json usage() const;
  bool all_done() const;

  ApiRequest request_;
  EngineBridge& bridge_;
  Tokenizer tokenizer_;
  std::string model_name_;
  std::string id_;
  int64_t created_ = 0;
  std::vector<Choice> choices_;
  std::shared_ptr<RequestStream> stream_;
  std::string error_;  // a rejection (or failure) reported by the engine
  int error_status_ = 400;
  ApiError error() const;
  int64_t cached_tokens_ = 0;  // prompt tokens from the prefix cache (the most of any choice)
  bool finished_ = false;
};

std::string sse_frame(const nlohmann::ordered_json& data);

}  // namespace lattice::serve
