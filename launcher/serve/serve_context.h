// What the front ends (HTTP, gRPC) share: the engine bridge, metrics, and, once the model has loaded, the
// tokenizer, chat template and model limits. Front ends start before loading and answer 503 until ready().
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "launcher/serve/chat_template.h"
#include "launcher/serve/engine_bridge.h"
#include "launcher/serve/metrics.h"
#include "launcher/serve/openai_request.h"
#include "launcher/serve/response_cache.h"

namespace lattice::serve {

struct ModelInfo {
  std::string name;  // what /v1/models lists and responses echo
  ModelLimits limits;
  std::optional<Tokenizer> tokenizer;  // absent when the checkpoint has no tokenizer.json
  std::optional<ChatTemplate> chat_template;
};

class ServeContext {
 public:
  ServeContext(EngineBridge& bridge, Metrics& metrics, std::string api_key)
      : bridge(bridge), metrics(metrics), api_key(std::move(api_key)) {}

  // Publishes the loaded model; the bridge must be set ready after this.
  void set_model(std::unique_ptr<ModelInfo> info) { model_ = std::move(info); }
  // Null until the model has loaded on every rank.
  const ModelInfo* model() const { return bridge.ready() ? model_.get() : nullptr; }

  EngineBridge& bridge;
  Metrics& metrics;
  const std::string api_key;  // empty: no authentication
  CachedResponses* responses = nullptr;  // the exact response cache (--response-cache), when on

 private:
  std::unique_ptr<ModelInfo> model_;
};

// Tokenizes the prompt (or renders and tokenizes the conversation), trims max_tokens to the context left,
// and checks the request against the model; throws ApiError (400, or 503 while loading). `text_output`:
// the answer is text (the HTTP API), so the model needs a tokenizer even for a token-id prompt.
void prepare_prompt(ApiRequest& request, const ServeContext& context, bool text_output);

}  // namespace lattice::serve
