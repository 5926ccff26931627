// The Redis response cache against a real redis-server that the test starts on a free loopback port (skipped,
// saying why, where redis-server is not installed): hits and misses, TTL expiry, two servers sharing one
// Redis, and Redis dying mid-run (lookups miss, stores are dropped, nothing throws, /metrics says so) and
// coming back (the cache reconnects).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "engine/core/error.h"
#include "launcher/serve/redis_response_cache.h"

namespace lattice::serve {
namespace {

std::string find_redis_server() {
  std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "");
  for (std::string dir; std::getline(path, dir, ':');)
    if (access((dir + "/redis-server").c_str(), X_OK) == 0) return dir + "/redis-server";
  return "";
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A redis-server child on 127.0.0.1:port, without persistence; killed by the test or on destruction.
class RedisServer {
 public:
  RedisServer(const std::string& binary, int port) : port_(port) {
    pid_ = fork();
    if (pid_ == 0) {
      if (!freopen("/dev/null", "w", stdout)) _exit(127);
      const std::string p = std::to_string(port);
      execl(binary.c_str(), "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100 && !answers(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~RedisServer() { kill(); }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool answers() const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    const bool ok = c && !c->err;
    if (c) redisFree(c);
    return ok;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

class RedisCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = find_redis_server();
    if (binary_.empty()) GTEST_SKIP() << "redis-server is not installed (scripts/setup installs it)";
    port_ = free_port();
    server_ = std::make_unique<RedisServer>(binary_, port_);
    ASSERT_TRUE(server_->answers()) << "redis-server did not start on port " << port_;
  }
  RedisAddress address() const { return {"127.0.0.1", port_, 1}; }

  std::string binary_;
  int port_ = 0;
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisCacheTest, HitsMissesAndSharesEntriesBetweenServers) {
  Metrics m1, m2;
  RedisResponseCache a(address(), std::chrono::seconds(60), m1), b(address(), std::chrono::seconds(60), m2);
  EXPECT_EQ(a.get("key"), std::nullopt);
  const std::string body = std::string("{\"x\":1}\0binary-safe", 19);
  a.put("key", body);
  EXPECT_EQ(a.get("key"), std::optional<std::string>(body));
  EXPECT_EQ(b.get("key"), std::optional<std::string>(body));  // another server, the same Redis
  EXPECT_EQ(m1.value("lattice_response_cache_available"), 1);
  EXPECT_EQ(m1.value("lattice_response_cache_errors_total"), 0);
  // Another database of the same Redis is another cache.
  RedisResponseCache other({"127.0.0.1", port_, 2}, std::chrono::seconds(60), m2);
  EXPECT_EQ(other.get("key"), std::nullopt);
}

TEST_F(RedisCacheTest, EntriesExpireAfterTheTtl) {
  Metrics m;
  RedisResponseCache c(address(), std::chrono::seconds(1), m);
  c.put("k", "v");
  EXPECT_EQ(c.get("k"), std::optional<std::string>("v"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(c.get("k"), std::nullopt);
}

TEST_F(RedisCacheTest, RedisDyingMidRunMakesMissesNotErrorsAndItsReturnReconnects) {
  Metrics m;
  RedisResponseCache c(address(), std::chrono::seconds(60), m);
  c.put("k", "v");
  ASSERT_EQ(c.get("k"), std::optional<std::string>("v"));
  server_->kill();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.get("k"), std::nullopt);
  c.put("k2", "v2");  // dropped, no throw
  for (int i = 0; i < 20; ++i) EXPECT_EQ(c.get("k"), std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "a dead Redis must not stall requests";
  EXPECT_EQ(m.value("lattice_response_cache_available"), 0);
  EXPECT_GE(m.value("lattice_response_cache_errors_total"), 1);

  server_ = std::make_unique<RedisServer>(binary_, port_);  // back, empty (no persistence)
  ASSERT_TRUE(server_->answers());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the retry interval
  EXPECT_TRUE(c.available());
  EXPECT_EQ(m.value("lattice_response_cache_available"), 1);
  c.put("k", "again");
  EXPECT_EQ(c.get("k"), std::optional<std::string>("again"));
}

TEST(RedisUrl, ParsesHostPortAndDatabaseAndRefusesTheRest) {
  const RedisAddress a = parse_redis_url("redis://cache.internal:6380/3");
  EXPECT_EQ(a.host, "cache.internal");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 3);
  EXPECT_EQ(parse_redis_url("redis://127.0.0.1:6379").db, 0);
  for (const char* bad : {"redis://host", "http://h:1", "redis://h:0", "redis://h:70000", "memcache"})
    EXPECT_THROW(parse_redis_url(bad), lattice::Error) << bad;
}

}  // namespace
}  // namespace lattice::serve
