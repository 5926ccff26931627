// The exact response cache: whole OpenAI responses of deterministic requests, so that a repeated request is
// answered without the engine (cache-aside, in front of the scheduler). Only requests whose output is fully
// determined are cached: greedy (temperature 0), or sampled with an explicit seed. The key is the model's
// identity, the canonical prompt token ids and every field that changes the output (sampling parameters,
// n, stop strings and ids, log-probabilities); presentation fields (stream, include_usage) and priority are
// not part of it. What is stored is the non-streamed response body (JSON text); a hit is returned as such, or
// re-sent as one chunk per choice to a streaming client.
//
// Caveat: a cached answer equals a recomputed one only as far as the engine is batch-invariant; on the CPU
// engine tokens agree and log-probabilities can differ in the last float bits between batch shapes.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "launcher/serve/metrics.h"
#include "launcher/serve/openai_request.h"

namespace lattice::serve {

class ResponseCache {
 public:
  virtual ~ResponseCache() = default;
  virtual std::optional<std::string> get(const std::string& key) = 0;
  virtual void put(const std::string& key, const std::string& value) = 0;
};

// In memory: LRU bounded by the bytes of its keys and values, entries expiring `ttl` after they were stored.
// Thread-safe.
class MemoryResponseCache final : public ResponseCache {
 public:
  using Clock = std::chrono::steady_clock;
  MemoryResponseCache(size_t max_bytes, std::chrono::seconds ttl, std::function<Clock::time_point()> now = Clock::now);

  std::optional<std::string> get(const std::string& key) override;
  void put(const std::string& key, const std::string& value) override;  // a value larger than the bound is not kept
  size_t entries() const;
  size_t bytes() const;

 private:
  struct Entry {
    std::string key, value;
    Clock::time_point expires;
  };
  void erase(std::list<Entry>::iterator it);  // mutex held

  const size_t max_bytes_;
  const std::chrono::seconds ttl_;
  const std::function<Clock::time_point()> now_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

// What the front ends use: keys for the served model, lookups and stores counted in /metrics
// (lattice_response_cache_requests_total{result="hit"|"miss"}, lattice_response_cache_stores_total).
class CachedResponses {
 public:
  CachedResponses(std::unique_ptr<ResponseCache> cache, std::string model_identity, Metrics& metrics);
  // The key of a cacheable request (prompt_ids filled), else nullopt.
  std::optional<std::string> key(const ApiRequest& request) const;
  // The stored response as a fresh one, or nullopt (a miss).
  std::optional<nlohmann::ordered_json> lookup(const std::string& key, bool chat);
  // Keeps `body` (a complete non-streamed response) unless a choice ended other than by stop or length.
  void store(const std::string& key, const nlohmann::ordered_json& body);

 private:
  std::unique_ptr<ResponseCache> cache_;
  const std::string model_identity_;
  Metrics& metrics_;
};

// Where --response-cache redis://HOST:PORT[/DB] points.
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
};
// Parses "redis://HOST:PORT[/DB]"; throws naming the problem.
RedisAddress parse_redis_url(const std::string& url);

// The cache key of `request` (prompt_ids filled) for the model `model_identity`, or nullopt when its output
// is not fully determined (sampled without a seed).
std::optional<std::string> response_cache_key(const std::string& model_identity, const ApiRequest& request);

// A stored non-streamed body as a fresh response: a new id and creation time, the rest as stored.
nlohmann::ordered_json cached_response(const nlohmann::ordered_json& stored, bool chat);
// The same response as Server-Sent Events: one chunk per choice with its whole text (and log-probabilities),
// the usage chunk when `include_usage`, then "data: [DONE]".
std::string cached_stream(const nlohmann::ordered_json& response, bool chat, bool include_usage);

}  // namespace lattice::serve
