#include "launcher/serve/response_cache.h"

#include <atomic>
#include <ctime>
#include <regex>

#include "engine/core/error.h"
#include "launcher/serve/openai_session.h"

namespace lattice::serve {

using json = nlohmann::ordered_json;

MemoryResponseCache::MemoryResponseCache(size_t max_bytes, std::chrono::seconds ttl,
                                         std::function<Clock::time_point()> now)
    : max_bytes_(max_bytes), ttl_(ttl), now_(std::move(now)) {
  LATTICE_CHECK(ttl.count() > 0, "the response cache TTL must be > 0 seconds, got ", ttl.count());
}

void MemoryResponseCache::erase(std::list<Entry>::iterator it) {
  bytes_ -= it->key.size() + it->value.size();
  index_.erase(it->key);
  lru_.erase(it);
}

std::optional<std::string> MemoryResponseCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  if (now_() >= found->second->expires) {
    erase(found->second);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, found->second);
  return found->second->value;
}

void MemoryResponseCache::put(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto found = index_.find(key); found != index_.end()) erase(found->second);
  const size_t size = key.size() + value.size();
  if (size > max_bytes_) return;
  while (bytes_ + size > max_bytes_) erase(std::prev(lru_.end()));
  lru_.push_front({key, value, now_() + ttl_});
  index_[key] = lru_.begin();
  bytes_ += size;
}

size_t MemoryResponseCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.size();
}

size_t MemoryResponseCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

RedisAddress parse_redis_url(const std::string& url) {
  static const std::regex form(R"(redis://([^:/]+):(\d{1,5})(?:/(\d+))?)");
  std::smatch m;
  LATTICE_CHECK(std::regex_match(url, m, form), "--response-cache must be memory or redis://HOST:PORT[/DB], got '",
                url, "'");
  RedisAddress a;
  a.host = m[1];
  a.port = std::stoi(m[2]);
  a.db = m[3].matched ? std::stoi(m[3]) : 0;
  LATTICE_CHECK(a.port > 0 && a.port < 65536, "redis port must be in [1, 65535], got ", a.port);
  return a;
}

std::optional<std::string> response_cache_key(const std::string& model_identity, const ApiRequest& r) {
  const SamplingParams& p = r.params;
  if (p.temperature != 0 && !p.seed) return std::nullopt;
  // Floats are written exactly (max_digits10) so that distinct values never share a key.
  const json key = {{"v", 1},
                    {"model", model_identity},
                    {"chat", r.chat},
                    {"prompt_ids", r.prompt_ids},
                    {"temperature", p.temperature},
                    {"top_k", p.top_k},
                    {"top_p", p.top_p},
                    {"min_p", p.min_p},
                    {"repetition_penalty", p.repetition_penalty},
                    {"presence_penalty", p.presence_penalty},
                    {"frequency_penalty", p.frequency_penalty},
                    {"seed", p.seed ? json(*p.seed) : json(nullptr)},
                    {"stop_token_ids", p.stop_token_ids},
                    {"ignore_eos", p.ignore_eos},
                    {"max_tokens", p.max_tokens},
                    {"sampler_logprobs", p.logprobs},
                    {"n", r.n},
                    {"stop", r.stop},
                    {"logprobs", r.logprobs},
                    {"top_logprobs", r.top_logprobs}};
  return key.dump();
}

CachedResponses::CachedResponses(std::unique_ptr<ResponseCache> cache, std::string model_identity, Metrics& metrics)
    : cache_(std::move(cache)), model_identity_(std::move(model_identity)), metrics_(metrics) {
  metrics_.describe("lattice_response_cache_requests_total", Metrics::Type::counter,
                    "Cacheable requests looked up in the response cache, by result (hit or miss)");
  metrics_.describe("lattice_response_cache_stores_total", Metrics::Type::counter, "Responses stored in the response cache");
  metrics_.add("lattice_response_cache_requests_total", {{"result", "hit"}}, 0);
  metrics_.add("lattice_response_cache_requests_total", {{"result", "miss"}}, 0);
  metrics_.add("lattice_response_cache_stores_total", {}, 0);
}

std::optional<std::string> CachedResponses::key(const ApiRequest& request) const {
  return response_cache_key(model_identity_, request);
}

std::optional<json> CachedResponses::lookup(const std::string& key, bool chat) {
  std::optional<std::string> stored = cache_->get(key);
  metrics_.add("lattice_response_cache_requests_total", {{"result", stored ? "hit" : "miss"}});
  if (!stored) return std::nullopt;
  return cached_response(json::parse(*stored), chat);
}

void CachedResponses::store(const std::string& key, const json& body) {
  for (const json& c : body.at("choices")) {
    const std::string finish = c.at("finish_reason").get<std::string>();
    if (finish != "stop" && finish != "length") return;  // cut short (abort): not what a rerun gives
  }
  cache_->put(key, body.dump());
  metrics_.add("lattice_response_cache_stores_total");
}

namespace {

std::string fresh_id(bool chat) {
  static std::atomic<uint64_t> counter{0};
  return std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(std::time(nullptr)) + "-cached-" +
         std::to_string(++counter);
}

}  // namespace

json cached_response(const json& stored, bool chat) {
  json out = stored;
  out["id"] = fresh_id(chat);
  out["created"] = static_cast<int64_t>(std::time(nullptr));
  return out;
}

std::string cached_stream(const json& response, bool chat, bool include_usage) {
  const char* object = chat ? "chat.completion.chunk" : "text_completion";
  auto frame = [&](json choices) {
    return json{{"id", response.at("id")}, {"object", object}, {"created", response.at("created")},
                {"model", response.at("model")}, {"choices", std::move(choices)}};
  };
  std::string out;
  for (const json& c : response.at("choices")) {
    json choice = {{"index", c.at("index")}};
    if (chat)
      choice["delta"] = {{"role", "assistant"}, {"content", c.at("message").at("content")}};
    else
      choice["text"] = c.at("text");
    choice["logprobs"] = c.at("logprobs");
    choice["finish_reason"] = c.at("finish_reason");
    out += sse_frame(frame(json::array({choice})));
  }
  if (include_usage) {
    json usage = frame(json::array());
    usage["usage"] = response.at("usage");
    out += sse_frame(usage);
  }
  return out + "data: [DONE]\n\n";
}

}  // namespace lattice::serve
