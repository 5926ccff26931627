#include "launcher/serve/openai_request.h"

#include <cmath>

#include "engine/core/error.h"
#include "launcher/serve/api_error.h"

namespace lattice::serve {

using json = nlohmann::ordered_json;

namespace {

const json* find(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* key, double fallback) {
  const json* v = find(body, key);
  if (!v) return fallback;
  if (!v->is_number()) throw invalid_field(key, std::string("'") + key + "' must be a number");
  return v->get<double>();
}

int64_t integer(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = find(body, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) throw invalid_field(key, std::string("'") + key + "' must be an integer");
  const int64_t x = v->get<int64_t>();  // an unsigned value past int64 would wrap: refused by its own test
  if (x < lo || x > hi || (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
    throw invalid_field(key, std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                 "], got " + std::to_string(x));
  return x;
}

bool boolean(const json& body, const char* key, bool fallback) {
  const json* v = find(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw invalid_field(key, std::string("'") + key + "' must be a boolean");
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const json& v, const char* key) {
  if (!v.is_array()) throw invalid_field(key, std::string("'") + key + "' must be an array of token ids");
  std::vector<int32_t> ids;
  for (const json& t : v) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      throw invalid_field(key, std::string("'") + key + "' must hold non-negative integer token ids");
    ids.push_back(t.get<int32_t>());
  }
  return ids;
}

// The fields both endpoints share.
ApiRequest parse_common(const json& body, bool chat) {
  if (!body.is_object()) throw ApiError(400, "invalid_request_error", "the request body must be a JSON object");
  ApiRequest r;
  r.chat = chat;
  if (const json* m = find(body, "model")) {
    if (!m->is_string()) throw invalid_field("model", "'model' must be a string");
    r.model = m->get<std::string>();
  }
  SamplingParams& p = r.params;
  const char* max_key = chat && find(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  // Chat defaults to "until the context ends"; check_against_model trims it to the room left.
  p.max_tokens = static_cast<int32_t>(integer(body, max_key, chat ? INT32_MAX : 16, 1, INT32_MAX));
  p.temperature = static_cast<float>(number(body, "temperature", 1.0));
  if (!(p.temperature >= 0 && p.temperature <= 2))
    throw invalid_field("temperature", "'temperature' must be in [0, 2], got " + std::to_string(p.temperature));
  p.top_p = static_cast<float>(number(body, "top_p", 1.0));
  if (!(p.top_p > 0 && p.top_p <= 1)) throw invalid_field("top_p", "'top_p' must be in (0, 1], got " + std::to_string(p.top_p));
  const int64_t top_k = integer(body, "top_k", 0, -1, INT32_MAX);
  p.top_k = static_cast<int32_t>(top_k < 0 ? 0 : top_k);  // -1 (vLLM) and 0 both mean "all tokens"
  p.min_p = static_cast<float>(number(body, "min_p", 0.0));
  if (!(p.min_p >= 0 && p.min_p <= 1)) throw invalid_field("min_p", "'min_p' must be in [0, 1], got " + std::to_string(p.min_p));
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    const double v = number(body, key, 0.0);
    if (!(std::fabs(v) <= 2)) throw invalid_field(key, std::string("'") + key + "' must be in [-2, 2], got " + std::to_string(v));
    (key[0] == 'p' ? p.presence_penalty : p.frequency_penalty) = static_cast<float>(v);
  }
  p.repetition_penalty = static_cast<float>(number(body, "repetition_penalty", 1.0));
  // vLLM's rule (SamplingParams._verify_args): finite and > 0, checked here after the cast to float.
  if (!(p.repetition_penalty > 0 && std::isfinite(p.repetition_penalty)))
    throw invalid_field("repetition_penalty", "'repetition_penalty' must be a finite number > 0, got " +
                                                  std::to_string(number(body, "repetition_penalty", 1.0)));
  if (find(body, "seed")) p.seed = static_cast<uint64_t>(integer(body, "seed", 0, 0, INT64_MAX));
  p.ignore_eos = boolean(body, "ignore_eos", false);
  if (const json* stop = find(body, "stop")) {
    const json list = stop->is_array() ? *stop : json::array({*stop});
    if (list.size() > 16) throw invalid_field("stop", "'stop' takes at most 16 entries");
    for (const json& s : list) {
      if (s.is_string() && !s.get<std::string>().empty()) r.stop.push_back(s.get<std::string>());
      else if (s.is_number_integer() && s.get<int64_t>() >= 0 && s.get<int64_t>() <= INT32_MAX) p.stop_token_ids.push_back(s.get<int32_t>());
      else throw invalid_field("stop", "'stop' must be a non-empty string, a token id, or an array of them");
    }
  }
  if (const json* ids = find(body, "stop_token_ids"))
    for (int32_t t : token_ids(*ids, "stop_token_ids")) p.stop_token_ids.push_back(t);
  r.n = static_cast<int32_t>(integer(body, "n", 1, 1, 16));
  r.stream = boolean(body, "stream", false);
  if (const json* so = find(body, "stream_options")) {
    if (!so->is_object()) throw invalid_field("stream_options", "'stream_options' must be an object");
    if (!r.stream) throw invalid_field("stream_options", "'stream_options' is only allowed with stream: true");
    r.include_usage = boolean(*so, "include_usage", false);
  }
  r.priority = static_cast<int32_t>(integer(body, "priority", 0, -1000000, 1000000));
  if (boolean(body, "echo", false)) throw invalid_field("echo", "'echo' is not supported");
  if (const json* rf = find(body, "response_format"); rf && !(rf->is_object() && rf->contains("type") && (*rf)["type"] == "text"))
    throw invalid_field("response_format", "only response_format {\"type\": \"text\"} is supported (no constrained decoding)");
  if (const json* s = find(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
    throw invalid_field("suffix", "'suffix' is not supported");
  return r;
}

void parse_messages(const json& body, ApiRequest& r) {
  const json* messages = find(body, "messages");
  if (!messages) throw invalid_field("messages", "'messages' is required");
  if (!messages->is_array() || messages->empty()) throw invalid_field("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw invalid_field(where, where + " must be an object");
    const json* role = find(m, "role");
    if (!role || !role->is_string()) throw invalid_field(where + ".role", where + ".role must be a string");
    static const std::vector<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
    if (std::find(roles.begin(), roles.end(), role->get<std::string>()) == roles.end())
      throw invalid_field(where + ".role", where + ".role '" + role->get<std::string>() + "' is not one of system, developer, user, assistant, tool");
    json out = m;
    const json* content = find(m, "content");
    if (content && content->is_array()) {  // [{"type": "text", "text": ...}, ...] -> one string
      std::string text;
      for (const json& part : *content) {
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
            !part["text"].is_string())
          throw invalid_field(where + ".content", where + ".content parts must be {\"type\": \"text\", \"text\": string}");
        text += part["text"].get<std::string>();
      }
      out["content"] = text;
    } else if (content && !content->is_string()) {
      throw invalid_field(where + ".content", where + ".content must be a string or an array of text parts");
    } else if (!content && role->get<std::string>() != "assistant") {
      throw invalid_field(where + ".content", where + ".content is required");
    }
    r.messages.push_back(std::move(out));
  }
}

// Throws ApiError 400 when arrays and objects in `text` nest deeper than kMaxJsonDepth. Runs before parsing:
// nlohmann::json copies and compares values recursively, so ~90k levels would overflow the handler's stack.
void check_nesting(const std::string& text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw ApiError(400, "invalid_request_error", "the JSON body nests arrays and objects deeper than " +
                       std::to_string(kMaxJsonDepth) + " levels", {}, "invalid_json");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace

json parse_body(const std::string& text) {
  check_nesting(text);
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    throw ApiError(400, "invalid_request_error", std::string("malformed JSON body: ") + e.what(), {}, "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, "invalid_request_error", "the request body must be a JSON object");
  return body;
}

ApiRequest parse_completion_request(const json& body) {
  ApiRequest r = parse_common(body, false);
  const json* prompt = find(body, "prompt");
  if (!prompt) throw invalid_field("prompt", "'prompt' is required");
  if (prompt->is_string()) {
    r.prompt_text = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt_text = (*prompt)[0].get<std::string>();
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
    r.prompt_ids = token_ids(*prompt, "prompt");
  } else {
    throw invalid_field("prompt", "'prompt' must be a string or an array of token ids (one prompt per request)");
  }
  if (const json* lp = find(body, "logprobs")) {
    r.logprobs = true;
    r.top_logprobs = static_cast<int32_t>(integer(body, "logprobs", 0, 0, 20));
    (void)lp;
  }
  r.params.logprobs = r.top_logprobs;
  return r;
}

ApiRequest parse_chat_request(const json& body) {
  ApiRequest r = parse_common(body, true);
  parse_messages(body, r);
  r.logprobs = boolean(body, "logprobs", false);
  r.top_logprobs = static_cast<int32_t>(integer(body, "top_logprobs", 0, 0, 20));
  if (r.top_logprobs > 0 && !r.logprobs) throw invalid_field("top_logprobs", "'top_logprobs' needs logprobs: true");
  r.params.logprobs = r.top_logprobs;
  r.add_generation_prompt = boolean(body, "add_generation_prompt", true);
  if (const json* kwargs = find(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) throw invalid_field("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.template_vars = *kwargs;
  }
  if (const json* tools = find(body, "tools")) {
    if (!tools->is_array()) throw invalid_field("tools", "'tools' must be an array");
    r.template_vars["tools"] = *tools;
  }
  return r;
}

void check_against_model(const ApiRequest& r, const ModelLimits& limits) {
  const char* param = r.chat ? "messages" : "prompt";
  const int64_t n = static_cast<int64_t>(r.prompt_ids.size());
  if (n == 0) throw invalid_field(param, std::string("the ") + (r.chat ? "rendered conversation" : "prompt") + " is empty");
  for (int32_t t : r.prompt_ids)
    if (t >= limits.vocab_size)
      throw invalid_field(param, "token id " + std::to_string(t) + " is out of range for vocabulary size " + std::to_string(limits.vocab_size));
  if (n >= limits.max_positions)
    throw ApiError(400, "invalid_request_error", "the prompt has " + std::to_string(n) + " tokens; this model's context is " +
                   std::to_string(limits.max_positions) + " tokens, which leaves no room to generate", param, "context_length_exceeded");
  if (n + 1 > limits.kv_tokens)
    throw ApiError(400, "invalid_request_error", "the prompt has " + std::to_string(n) + " tokens; the KV cache holds " +
                   std::to_string(limits.kv_tokens), param, "context_length_exceeded");
  for (int32_t t : r.params.stop_token_ids)
    if (t >= limits.vocab_size)
      throw invalid_field("stop", "stop token id " + std::to_string(t) + " is out of range for vocabulary size " + std::to_string(limits.vocab_size));
  try {
    r.params.validate(limits.vocab_size, limits.max_top_k);
  } catch (const Error& e) {
    throw ApiError(400, "invalid_request_error", e.what(), {}, "invalid_value");
  }
}

}  // namespace lattice::serve
