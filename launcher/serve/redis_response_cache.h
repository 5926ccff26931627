// The response cache in Redis (--response-cache redis://HOST:PORT[/DB]), shared by every Lattice server
// that points at the same Redis: entries are SET with EX (the TTL) under "lattice:response:" + the canonical
// key (the key itself, not a hash of it, so entries never collide); Redis's own maxmemory policy bounds the
// size. One hiredis connection, used under a mutex, with 250 ms connect and command timeouts. If Redis is
// unreachable or fails, lookups miss and stores are dropped (requests never fail for it), the state goes to
// the log and to /metrics (lattice_response_cache_available 0, lattice_response_cache_errors_total), and
// reconnection is tried at most once a second.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "launcher/serve/metrics.h"
#include "launcher/serve/response_cache.h"

struct redisContext;

namespace lattice::serve {

class RedisResponseCache final : public ResponseCache {
 public:
  // Connects at once (a failure is logged and retried later, not thrown).
  RedisResponseCache(RedisAddress address, std::chrono::seconds ttl, Metrics& metrics);
  ~RedisResponseCache() override;

  std::optional<std::string> get(const std::string& key) override;
  void put(const std::string& key, const std::string& value) override;
  bool available();

 private:
  bool connect();                                   // mutex held; true when connected
  void fail(const std::string& what);               // mutex held: drop the connection, log once, count
  void set_available(bool up);

  const RedisAddress address_;
  const std::chrono::seconds ttl_;
  Metrics& metrics_;
  std::mutex mutex_;
  redisContext* context_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
  bool logged_down_ = false;
};

}  // namespace lattice::serve
