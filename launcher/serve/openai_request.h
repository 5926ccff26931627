// Parsing and validating OpenAI-style request bodies (/v1/completions, /v1/chat/completions) into what the
// engine runs. Every invalid field becomes an ApiError 400 that names it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler/sampling_params.h"

namespace lattice::serve {

// What the request may ask of this model; checked before anything is queued.
struct ModelLimits {
  int64_t vocab_size = 0;
  int64_t max_positions = 0;
  int64_t kv_tokens = 0;  // tokens the whole KV cache holds
  int32_t max_top_k = 0;  // > 0: the largest top_k short of the vocabulary (the engine samples on a GPU)
};

struct ApiRequest {
  bool chat = false;
  std::string model;
  std::optional<std::string> prompt_text;  // completions: text prompt
  std::vector<int32_t> prompt_ids;         // completions: token-id prompt (or the encoded text, filled later)
  nlohmann::ordered_json messages;                 // chat: the messages array, validated
  SamplingParams params;
  int32_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::vector<std::string> stop;  // stop strings (stop token ids go to params.stop_token_ids)
  bool logprobs = false;          // report log-probabilities
  int32_t top_logprobs = 0;       // and this many alternatives per token
  int32_t priority = 0;
  bool add_generation_prompt = true;  // chat extension
  nlohmann::ordered_json template_vars = nlohmann::ordered_json::object();  // chat: tools, chat_template_kwargs (enable_thinking, ...)
};

ApiRequest parse_completion_request(const nlohmann::ordered_json& body);
ApiRequest parse_chat_request(const nlohmann::ordered_json& body);

// The prompt (after tokenization) and the sampling parameters against the model's limits; throws ApiError.
void check_against_model(const ApiRequest& request, const ModelLimits& limits);

// How deeply a request body may nest arrays and objects (chat_template_kwargs, tools, message fields).
inline constexpr int kMaxJsonDepth = 64;

// Throws ApiError 400 when `text` is not a JSON object or nests deeper than kMaxJsonDepth.
nlohmann::ordered_json parse_body(const std::string& text);

}  // namespace lattice::serve
