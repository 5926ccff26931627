// Prometheus exposition (escaping, histograms), OpenAI request validation (JSON nesting bound included), the
// access policy (API key, browser origins, content types), stop-string matching and ids past the tokenizer.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "launcher/serve/access_policy.h"
#include "launcher/serve/api_error.h"
#include "launcher/serve/choice_text.h"
#include "launcher/serve/engine_bridge.h"
#include "launcher/serve/metrics.h"
#include "launcher/serve/openai_request.h"

namespace lattice::serve {
namespace {

using json = nlohmann::ordered_json;

TEST(Metrics, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
  EXPECT_EQ(render_labels({{"path", "/v1/\"x\""}, {"code", "200"}}), "{path=\"/v1/\\\"x\\\"\",code=\"200\"}");
  EXPECT_THROW(render_labels({{"bad-name", "x"}}), Error);
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
}

TEST(Metrics, CountersGaugesAndCumulativeHistograms) {
  Metrics m;
  m.describe("req_total", Metrics::Type::counter, "Requests\nby status");
  m.describe("queue", Metrics::Type::gauge, "Queue length");
  m.describe("lat_seconds", Metrics::Type::histogram, "Latency", {0.1, 1});
  m.add("req_total", {{"status", "200"}});
  m.add("req_total", {{"status", "200"}}, 2);
  m.set("queue", 5);
  for (double v : {0.05, 0.1, 0.5, 3.0}) m.observe("lat_seconds", v);
  EXPECT_EQ(m.value("req_total", {{"status", "200"}}), 3);
  EXPECT_EQ(m.exposition(),
            "# HELP lat_seconds Latency\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 2\nlat_seconds_bucket{le=\"1\"} 3\nlat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 3.65\nlat_seconds_count 4\n"
            "# HELP queue Queue length\n# TYPE queue gauge\nqueue 5\n"
            "# HELP req_total Requests\\nby status\n# TYPE req_total counter\nreq_total{status=\"200\"} 3\n");
  EXPECT_THROW(m.set("req_total", 1), Error);  // wrong type
  EXPECT_THROW(m.add("undeclared"), Error);
}

TEST(OpenAiRequest, CompletionFieldsMapToSamplingParams) {
  const ApiRequest r = parse_completion_request(json::parse(R"({"prompt": "hi", "max_tokens": 5, "temperature": 0.5,
      "top_p": 0.9, "top_k": 40, "min_p": 0.1, "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
      "seed": 9, "stop": ["END", 7], "stop_token_ids": [8], "n": 2, "logprobs": 3, "priority": 4, "stream": true,
      "stream_options": {"include_usage": true}})"));
  EXPECT_EQ(*r.prompt_text, "hi");
  EXPECT_EQ(r.params.max_tokens, 5);
  EXPECT_FLOAT_EQ(r.params.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.params.top_p, 0.9f);
  EXPECT_EQ(r.params.top_k, 40);
  EXPECT_FLOAT_EQ(r.params.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.params.frequency_penalty, -0.5f);
  EXPECT_EQ(*r.params.seed, 9u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.params.stop_token_ids, (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.params.logprobs, 3);
  EXPECT_EQ(r.priority, 4);
  EXPECT_TRUE(r.stream && r.include_usage);
}

TEST(OpenAiRequest, InvalidFieldsAreNamed) {
  auto param_of = [](const std::string& body, bool chat = false) {
    try {
      chat ? parse_chat_request(json::parse(body)) : parse_completion_request(json::parse(body));
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      return e.param;
    }
    return std::string("no error");
  };
  EXPECT_EQ(param_of(R"({"prompt": "x", "temperature": "hot"})"), "temperature");
  EXPECT_EQ(param_of(R"({"prompt": "x", "n": 17})"), "n");
  // repetition_penalty as vLLM takes it: finite (as a float) and > 0.
  EXPECT_EQ(param_of(R"({"prompt": "x", "repetition_penalty": 0})"), "repetition_penalty");
  EXPECT_EQ(param_of(R"({"prompt": "x", "repetition_penalty": -1.5})"), "repetition_penalty");
  EXPECT_EQ(param_of(R"({"prompt": "x", "repetition_penalty": 1e39})"), "repetition_penalty");  // inf as a float
  EXPECT_EQ(param_of(R"({"prompt": "x", "repetition_penalty": 1e-50})"), "repetition_penalty");  // 0 as a float
  EXPECT_EQ(param_of(R"({"prompt": "x", "repetition_penalty": 1.2})"), "no error");
  EXPECT_EQ(param_of(R"({"prompt": "x", "response_format": {"type": "json_object"}})"), "response_format");
  EXPECT_EQ(param_of(R"({"prompt": "x", "response_format": {"type": "text"}})"), "no error");
  EXPECT_EQ(param_of(R"({"prompt": ["a", "b"]})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": "x", "stream_options": {"include_usage": true}})"), "stream_options");
  EXPECT_EQ(param_of(R"({"messages": [{"role": "user"}]})", true), "messages[0].content");
  // Found by tests/fuzz/openai_request_fuzz.cc: a part's non-string type was an nlohmann type_error, and 2^64 - 1
  // wrapped to top_k -1 (no top-k).
  EXPECT_EQ(param_of(R"({"messages": [{"role": "user", "content": [{"type": {"a": 1}, "text": "x"}]}]})", true),
            "messages[0].content");
  EXPECT_EQ(param_of(R"({"prompt": "x", "top_k": 18446744073709551615})"), "top_k");
  EXPECT_EQ(param_of(R"({"prompt": "x", "response_format": {"type": ["text"]}})"), "response_format");
  EXPECT_EQ(param_of(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", true), "top_logprobs");
  const ApiRequest chat = parse_chat_request(json::parse(R"({"messages": [{"role": "user",
      "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})"));
  EXPECT_EQ(chat.messages[0]["content"], "ab");
  EXPECT_THROW(parse_body("[1, 2]"), ApiError);
}

TEST(OpenAiRequest, CheckedAgainstTheModel) {
  ApiRequest r = parse_completion_request(json::parse(R"({"prompt": [1, 2, 3]})"));
  r.prompt_ids = {1, 2, 3};
  EXPECT_NO_THROW(check_against_model(r, {512, 512, 1024}));
  EXPECT_THROW(check_against_model(r, {512, 3, 1024}), ApiError);  // no room to generate
  EXPECT_THROW(check_against_model(r, {512, 512, 3}), ApiError);   // KV cache too small
  r.prompt_ids = {600};
  EXPECT_THROW(check_against_model(r, {512, 512, 1024}), ApiError);
}

TEST(OpenAiRequest, NestingIsBoundedBeforeParsing) {
  auto nest = [](int levels, const std::string& open = "[", const std::string& close = "]") {
    std::string text;
    for (int i = 0; i < levels; ++i) text += open;
    for (int i = 0; i < levels; ++i) text += close;
    return text;
  };
  // The body object is level 1: kMaxJsonDepth - 1 levels inside it are the most allowed.
  EXPECT_NO_THROW(parse_body("{\"x\": " + nest(kMaxJsonDepth - 1) + "}"));
  try {
    parse_body("{\"x\": " + nest(kMaxJsonDepth) + "}");
    ADD_FAILURE() << "65 levels accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(std::string(e.what()).find("deeper than 64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_body("{\"x\": " + nest(100000, "{\"a\":", "}") + "}"), ApiError);
  // Brackets inside strings (escaped quotes included) are text, not nesting.
  const std::string brackets(1000, '[');
  EXPECT_NO_THROW(parse_body("{\"x\": \"" + brackets + "\", \"y\": \"\\\"" + brackets + "\"}"));
}

TEST(AccessPolicy, BearerKeyInAnyCaseComparedWhole) {
  EXPECT_TRUE(constant_time_equal("sekrit", "sekrit"));
  EXPECT_FALSE(constant_time_equal("sekrit", "sekri"));
  EXPECT_FALSE(constant_time_equal("sekri", "sekrit"));
  EXPECT_FALSE(constant_time_equal("sekrit", "sekriT"));
  EXPECT_TRUE(constant_time_equal("", ""));
  const char* how = "'Authorization: Bearer <key>'";
  for (const char* ok : {"Bearer sekrit", "bearer sekrit", "BEARER sekrit", "  Bearer sekrit  "})
    EXPECT_NO_THROW(check_bearer(ok, "sekrit", how)) << ok;
  for (const char* bad : {"", "Bearer", "Bearer ", "Bearer sekri", "Bearer sekrit2", "Basic sekrit", "sekrit", "Bearersekrit"}) {
    try {
      check_bearer(bad, "sekrit", how);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 401) << bad;
    }
  }
  EXPECT_NO_THROW(check_bearer("", "", how));  // no key configured
}

TEST(AccessPolicy, ForeignOriginsAndContentTypes) {
  EXPECT_FALSE(is_foreign_origin("", "127.0.0.1:8000", "127.0.0.1"));  // not a browser
  EXPECT_FALSE(is_foreign_origin("http://127.0.0.1:8000", "127.0.0.1:8000", "127.0.0.1"));
  EXPECT_FALSE(is_foreign_origin("http://localhost:8000", "localhost:8000", "127.0.0.1"));
  EXPECT_FALSE(is_foreign_origin("http://[::1]:8000", "[::1]:8000", "127.0.0.1"));
  EXPECT_FALSE(is_foreign_origin("http://10.1.2.3:8000", "10.1.2.3:8000", "10.1.2.3"));  // --host 10.1.2.3
  EXPECT_TRUE(is_foreign_origin("http://evil.example", "127.0.0.1:8000", "127.0.0.1"));
  EXPECT_TRUE(is_foreign_origin("http://localhost:3000", "localhost:8000", "127.0.0.1"));  // another local page
  EXPECT_TRUE(is_foreign_origin("null", "127.0.0.1:8000", "127.0.0.1"));                   // sandboxed page, file://
  EXPECT_TRUE(is_foreign_origin("http://rebind.example:8000", "rebind.example:8000", "0.0.0.0"));  // DNS rebinding
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(is_json_media_type(""));
  EXPECT_FALSE(is_json_media_type("text/plain"));
  EXPECT_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_media_type("application/jsonp"));
}

TEST(ChoiceText, IdsPastTheTokenizerAddNoText) {
  const Tokenizer tokenizer = Tokenizer::from_dir(std::string(LATTICE_TEST_DATA_DIR) + "/tiny-llama/f32");
  ASSERT_EQ(tokenizer.vocab_size(), 512);
  const std::vector<int32_t> hello = tokenizer.encode("Hello world", false);
  ChoiceText text(tokenizer, {});
  std::string out;
  for (size_t i = 0; i < hello.size(); ++i) {
    out += text.push(SampledToken{hello[i], 0.0f, {}});
    out += text.push(SampledToken{512 + static_cast<int32_t>(i), 0.0f, {}});  // padded-vocabulary ids
  }
  out += text.push(SampledToken{-1, 0.0f, {}});
  out += text.finish();
  EXPECT_EQ(out, tokenizer.decode(hello));
  EXPECT_EQ(text.num_tokens(), static_cast<int64_t>(2 * hello.size() + 1));
  EXPECT_EQ(token_text(tokenizer, 600), "");
  EXPECT_EQ(token_text(tokenizer, hello[0]), tokenizer.decode(std::vector<int32_t>{hello[0]}));
  const json lp = chat_logprobs(tokenizer, {SampledToken{700, -0.5f, {TokenLogprob{701, -1.0f}}}}, 1);
  EXPECT_EQ(lp["content"][0]["token"], "");
  EXPECT_EQ(lp["content"][0]["top_logprobs"][0]["token"], "");
}

TEST(StopMatcher, HoldsBackPossiblePrefixesAndCutsAtTheMatch) {
  StopMatcher m({"END", "xyz"});
  EXPECT_EQ(m.push("abc E"), "abc ");   // "E" may start "END"
  EXPECT_EQ(m.push("N"), "");
  EXPECT_EQ(m.push("D tail"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.push("more"), "");
  StopMatcher n({"END"});
  EXPECT_EQ(n.push("EN"), "");
  EXPECT_EQ(n.push("x"), "ENx");        // no longer a prefix
  EXPECT_EQ(n.push("E"), "");
  EXPECT_EQ(n.flush(), "E");            // the end of the text releases what was held
  EXPECT_FALSE(n.matched());
}

// A failed engine (an engine error, a stalled or dead rank): every open choice ends with a 500 error event,
// new requests are Unavailable (503, not the 429 of a drain), and the first failure is the one reported.
TEST(EngineBridge, FailAllEndsOpenChoicesAndRefusesNewOnes) {
  RequestInbox inbox;
  Metrics metrics;
  describe_serving_metrics(metrics);
  EngineBridge bridge(inbox, metrics, 8);
  Request r;
  r.prompt = {1, 2};
  std::shared_ptr<RequestStream> stream = bridge.submit({r, r});
  EXPECT_FALSE(bridge.failure());
  bridge.fail_all("rank 1 stalled");
  bridge.fail_all("a later failure");
  EXPECT_EQ(bridge.failure(), "rank 1 stalled");
  EXPECT_EQ(bridge.pending(), 0);
  for (int i = 0; i < 2; ++i) {
    std::optional<ChoiceEvent> e = stream->next(std::chrono::milliseconds(0));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 500);
    EXPECT_EQ(e->error, "rank 1 stalled");
  }
  EXPECT_TRUE(stream->drained());
  EXPECT_THROW(bridge.submit({r}), Unavailable);
  EXPECT_FALSE(bridge.accepting());
}

}  // namespace
}  // namespace lattice::serve
