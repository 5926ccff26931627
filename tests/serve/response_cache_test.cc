// The exact response cache: the in-memory LRU with TTL and size bound, which requests get a key and what
// changes it, the store rules, and a hit re-sent as Server-Sent Events.
#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "launcher/serve/response_cache.h"

namespace lattice::serve {
namespace {

using json = nlohmann::ordered_json;
using Clock = MemoryResponseCache::Clock;

struct FakeClock {
  Clock::time_point t{};
  std::function<Clock::time_point()> fn() {
    return [this] { return t; };
  }
};

TEST(MemoryResponseCache, HitsMissesAndExpiresAfterTheTtl) {
  FakeClock clock;
  MemoryResponseCache c(1 << 20, std::chrono::seconds(10), clock.fn());
  EXPECT_EQ(c.get("k"), std::nullopt);
  c.put("k", "v");
  EXPECT_EQ(c.get("k"), std::optional<std::string>("v"));
  clock.t += std::chrono::seconds(9);
  EXPECT_EQ(c.get("k"), std::optional<std::string>("v"));  // a hit does not extend the TTL
  clock.t += std::chrono::seconds(1);
  EXPECT_EQ(c.get("k"), std::nullopt);
  EXPECT_EQ(c.entries(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(MemoryResponseCache, KeepsWithinItsBytesEvictingTheLeastRecentlyUsed) {
  MemoryResponseCache c(30, std::chrono::seconds(60));
  c.put("a", std::string(9, 'a'));  // 10 bytes each, key included
  c.put("b", std::string(9, 'b'));
  c.put("c", std::string(9, 'c'));
  ASSERT_TRUE(c.get("a"));          // a is now the most recently used
  c.put("d", std::string(9, 'd'));  // evicts b
  EXPECT_FALSE(c.get("b"));
  EXPECT_TRUE(c.get("a") && c.get("c") && c.get("d"));
  EXPECT_EQ(c.bytes(), 30u);
  c.put("a", std::string(19, 'A'));  // replacing grows it to 20 bytes: c, the least recent, makes room
  EXPECT_EQ(c.get("a"), std::optional<std::string>(std::string(19, 'A')));
  EXPECT_EQ(c.entries(), 2u);
  c.put("huge", std::string(40, 'x'));  // larger than the whole bound: not kept, nothing evicted
  EXPECT_FALSE(c.get("huge"));
  EXPECT_EQ(c.entries(), 2u);
}

ApiRequest greedy_request() {
  ApiRequest r;
  r.prompt_ids = {1, 2, 3};
  r.params.temperature = 0;
  return r;
}

TEST(ResponseCacheKey, OnlyDeterministicRequestsAndEveryOutputFieldCounts) {
  const ApiRequest base = greedy_request();
  const std::optional<std::string> key = response_cache_key("m", base);
  ASSERT_TRUE(key.has_value());
  ApiRequest sampled = base;
  sampled.params.temperature = 0.7f;
  EXPECT_FALSE(response_cache_key("m", sampled).has_value());
  sampled.params.seed = 5;
  EXPECT_TRUE(response_cache_key("m", sampled).has_value());

  const std::vector<std::function<void(ApiRequest&)>> changes = {
      [](ApiRequest& r) { r.chat = true; },
      [](ApiRequest& r) { r.prompt_ids.push_back(4); },
      [](ApiRequest& r) { r.params.top_k = 5; },
      [](ApiRequest& r) { r.params.top_p = 0.5f; },
      [](ApiRequest& r) { r.params.min_p = 0.1f; },
      [](ApiRequest& r) { r.params.repetition_penalty = 1.1f; },
      [](ApiRequest& r) { r.params.presence_penalty = 0.2f; },
      [](ApiRequest& r) { r.params.frequency_penalty = 0.2f; },
      [](ApiRequest& r) { r.params.seed = 1; },
      [](ApiRequest& r) { r.params.stop_token_ids = {9}; },
      [](ApiRequest& r) { r.params.ignore_eos = true; },
      [](ApiRequest& r) { r.params.max_tokens = 17; },
      [](ApiRequest& r) { r.params.logprobs = 2; },
      [](ApiRequest& r) { r.n = 2; },
      [](ApiRequest& r) { r.stop = {"x"}; },
      [](ApiRequest& r) { r.logprobs = true; },
      [](ApiRequest& r) { r.top_logprobs = 2; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    ApiRequest r = base;
    changes[i](r);
    EXPECT_NE(response_cache_key("m", r), key) << "change " << i;
  }
  EXPECT_NE(response_cache_key("other model", base), key);
  ApiRequest presentation = base;
  presentation.stream = true;
  presentation.include_usage = true;
  presentation.priority = 3;
  EXPECT_EQ(response_cache_key("m", presentation), key);
}

json body(const std::string& finish) {
  return json{{"id", "cmpl-1"}, {"object", "text_completion"}, {"created", 1}, {"model", "m"},
              {"choices", json::array({json{{"index", 0}, {"text", "hi there"}, {"logprobs", nullptr},
                                             {"finish_reason", finish}}})},
              {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}}};
}

TEST(CachedResponses, StoresOnlyCompleteResponsesAndCountsHitsAndMisses) {
  Metrics metrics;
  CachedResponses responses(std::make_unique<MemoryResponseCache>(1 << 20, std::chrono::seconds(60)), "m", metrics);
  const std::string key = *responses.key(greedy_request());
  EXPECT_FALSE(responses.lookup(key, false));
  responses.store(key, body("abort"));  // a cancelled choice is not what a rerun gives
  EXPECT_FALSE(responses.lookup(key, false));
  responses.store(key, body("length"));
  const std::optional<json> hit = responses.lookup(key, false);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ((*hit)["choices"], body("length")["choices"]);
  EXPECT_EQ((*hit)["usage"], body("length")["usage"]);
  EXPECT_NE((*hit)["id"], "cmpl-1");  // a fresh response
  EXPECT_EQ(metrics.value("lattice_response_cache_requests_total", {{"result", "hit"}}), 1);
  EXPECT_EQ(metrics.value("lattice_response_cache_requests_total", {{"result", "miss"}}), 2);
  EXPECT_EQ(metrics.value("lattice_response_cache_stores_total"), 1);
}

std::vector<json> sse_events(const std::string& text, bool* done) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  *done = false;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    if (line == "data: [DONE]")
      *done = true;
    else
      out.push_back(json::parse(line.substr(6)));
  }
  return out;
}

TEST(CachedResponses, AHitStreamsOneChunkPerChoiceThenUsageThenDone) {
  bool done = false;
  std::vector<json> events = sse_events(cached_stream(body("stop"), false, true), &done);
  EXPECT_TRUE(done);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["object"], "text_completion");
  EXPECT_EQ(events[0]["choices"][0]["text"], "hi there");
  EXPECT_EQ(events[0]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(events[1]["choices"], json::array());
  EXPECT_EQ(events[1]["usage"]["total_tokens"], 5);

  json chat = body("stop");
  chat["choices"][0].erase("text");
  chat["choices"][0]["message"] = {{"role", "assistant"}, {"content", "hello"}};
  events = sse_events(cached_stream(chat, true, false), &done);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", "hello"}}));
}

}  // namespace
}  // namespace lattice::serve
