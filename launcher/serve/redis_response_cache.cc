#include "launcher/serve/redis_response_cache.h"

#include <hiredis/hiredis.h>

#include <cstdio>

#include "engine/core/error.h"

namespace lattice::serve {

namespace {

constexpr const char* kPrefix = "lattice:response:";
constexpr auto kTimeout = std::chrono::milliseconds(250);
constexpr auto kRetry = std::chrono::seconds(1);

timeval to_timeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

RedisResponseCache::RedisResponseCache(RedisAddress address, std::chrono::seconds ttl, Metrics& metrics)
    : address_(std::move(address)), ttl_(ttl), metrics_(metrics) {
  LATTICE_CHECK(ttl.count() > 0, "the response cache TTL must be > 0 seconds, got ", ttl.count());
  metrics_.describe("lattice_response_cache_available", Metrics::Type::gauge,
                    "1 while the response cache's Redis answers, 0 while the server runs without it");
  metrics_.describe("lattice_response_cache_errors_total", Metrics::Type::counter,
                    "Response cache operations that failed (Redis unreachable or erroring)");
  metrics_.add("lattice_response_cache_errors_total", {}, 0);
  std::lock_guard<std::mutex> lock(mutex_);
  set_available(connect());
}

RedisResponseCache::~RedisResponseCache() {
  if (context_) redisFree(context_);
}

void RedisResponseCache::set_available(bool up) { metrics_.set("lattice_response_cache_available", up ? 1 : 0); }

void RedisResponseCache::fail(const std::string& what) {
  if (context_) redisFree(context_);
  context_ = nullptr;
  next_attempt_ = std::chrono::steady_clock::now() + kRetry;
  metrics_.add("lattice_response_cache_errors_total");
  set_available(false);
  if (!logged_down_)
    std::fprintf(stderr, "lattice serve: response cache: redis %s:%d: %s; serving without the cache until it is back\n",
                 address_.host.c_str(), address_.port, what.c_str());
  logged_down_ = true;
}

bool RedisResponseCache::connect() {
  if (context_) return true;
  if (std::chrono::steady_clock::now() < next_attempt_) return false;
  context_ = redisConnectWithTimeout(address_.host.c_str(), address_.port, to_timeval(kTimeout));
  if (!context_ || context_->err) {
    fail(context_ ? context_->errstr : "cannot allocate a connection");
    return false;
  }
  redisSetTimeout(context_, to_timeval(kTimeout));
  if (address_.db != 0) {
    Reply r(static_cast<redisReply*>(redisCommand(context_, "SELECT %d", address_.db)));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      fail(r ? std::string(r->str, r->len) : std::string(context_->errstr));
      return false;
    }
  }
  if (logged_down_)
    std::fprintf(stderr, "lattice serve: response cache: redis %s:%d is back\n", address_.host.c_str(), address_.port);
  logged_down_ = false;
  set_available(true);
  return true;
}

std::optional<std::string> RedisResponseCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!connect()) return std::nullopt;
  const std::string k = kPrefix + key;
  Reply r(static_cast<redisReply*>(redisCommand(context_, "GET %b", k.data(), k.size())));
  if (!r || r->type == REDIS_REPLY_ERROR) {
    fail(r ? std::string(r->str, r->len) : std::string(context_->errstr));
    return std::nullopt;
  }
  if (r->type != REDIS_REPLY_STRING) return std::nullopt;  // nil: a miss
  return std::string(r->str, r->len);
}

void RedisResponseCache::put(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!connect()) return;
  const std::string k = kPrefix + key, ttl = std::to_string(ttl_.count());
  Reply r(static_cast<redisReply*>(
      redisCommand(context_, "SET %b %b EX %s", k.data(), k.size(), value.data(), value.size(), ttl.c_str())));
  if (!r || r->type == REDIS_REPLY_ERROR) fail(r ? std::string(r->str, r->len) : std::string(context_->errstr));
}

bool RedisResponseCache::available() {
  std::lock_guard<std::mutex> lock(mutex_);
  return connect();
}

}  // namespace lattice::serve
