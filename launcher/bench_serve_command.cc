// lattice bench-serve: a load generator for a running `lattice serve` (or any OpenAI-compatible server).
// Requests of --input-len random token ids asking for exactly --output-len tokens arrive as a Poisson
// process at --rate per second; reports throughput, time to first token, inter-token latency and end-to-end
// latency (mean, p50, p90, p99) and writes every request's timings as JSON for scripts/plot_bench_serve.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <thread>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "launcher/cli_args.h"
#include "launcher/commands.h"

namespace lattice::launcher {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* kHelp = R"(usage: lattice bench-serve --url http://127.0.0.1:8000 [flags]
  --rate R          mean arrivals per second, Poisson (default 4; 0 sends everything at once)
  --requests N      requests to send (default 64)
  --input-len I     prompt tokens per request (default 32)
  --shared-prefix P the first P of them are the same in every request (a system prompt; default 0)
  --output-len O    generated tokens per request (ignore_eos) (default 32)
  --stream          stream the responses (needed for time to first token and inter-token latency)
  --api-key KEY     --seed S (default 0)  --timeout S per request (default 600)
  --output FILE     per-request timings and the summary as JSON (default bench-serve.json)
Plot: python3 scripts/plot_bench_serve.py bench-serve.json bench-serve.png
)";

struct Record {
  double start = 0;          // seconds after the benchmark began
  double ttft = NAN;         // first text, seconds after start
  double e2e = NAN;
  std::vector<double> itl;   // gaps between streamed chunks
  int64_t prompt_tokens = 0, output_tokens = 0;
  std::string error;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = p / 100 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

json summary_of(const std::vector<double>& v) {
  if (v.empty()) return nullptr;
  double sum = 0;
  for (double x : v) sum += x;
  return {{"mean", sum / static_cast<double>(v.size())}, {"p50", percentile(v, 50)}, {"p90", percentile(v, 90)},
          {"p99", percentile(v, 99)}, {"count", v.size()}};
}

// One request; fills `r`. Streams parse Server-Sent Events as they arrive.
void send_one(const std::string& host, int port, const httplib::Headers& headers, const json& body, bool stream,
              int timeout_s, Clock::time_point t0, Record& r) {
  httplib::Client client(host, port);
  client.set_read_timeout(timeout_s, 0);
  client.set_connection_timeout(10, 0);
  const Clock::time_point start = Clock::now();
  r.start = std::chrono::duration<double>(start - t0).count();
  auto since_start = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  std::string buffer, whole;
  double last_chunk = NAN;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (!stream) {
      whole.append(data, len);
      return true;
    }
    buffer.append(data, len);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string frame = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (frame.rfind("data: ", 0) != 0 || frame == "data: [DONE]") continue;
      const json chunk = json::parse(frame.substr(6), nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("error")) r.error = chunk["error"].value("message", "error");
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        r.prompt_tokens = chunk["usage"].value("prompt_tokens", 0);
        r.output_tokens = chunk["usage"].value("completion_tokens", 0);
      }
      if (!chunk.contains("choices") || chunk["choices"].empty()) continue;
      const double now = since_start();
      if (std::isnan(r.ttft)) r.ttft = now;
      else r.itl.push_back(now - last_chunk);
      last_chunk = now;
    }
    return true;
  };
  const httplib::Result res = client.send(req);
  r.e2e = since_start();
  if (!res) {
    r.error = "connection failed: " + httplib::to_string(res.error());
    return;
  }
  if (res->status != 200) {
    // A refused streamed request has its JSON error body in the frame buffer (it is no "data:" frame).
    const std::string& body = !whole.empty() ? whole : !buffer.empty() ? buffer : res->body;
    r.error = "HTTP " + std::to_string(res->status) + ": " + body;
    return;
  }
  if (!stream) {
    const json j = json::parse(whole, nullptr, false);
    if (j.is_discarded() || !j.contains("usage")) {
      r.error = "bad response body";
      return;
    }
    r.prompt_tokens = j["usage"].value("prompt_tokens", 0);
    r.output_tokens = j["usage"].value("completion_tokens", 0);
  }
}

}  // namespace

int bench_serve_command(const Args& argv, parallel::MpiRuntime*) {
  const CliArgs args(argv, {"stream", "help"});
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::string url = args.require("url");
  const double rate = args.get_double("rate", 4);
  const int64_t n = args.get_int("requests", 64), input_len = args.get_int("input-len", 32),
                output_len = args.get_int("output-len", 32), seed = args.get_int("seed", 0),
                shared_prefix = args.get_int("shared-prefix", 0);
  const int timeout_s = static_cast<int>(args.get_int("timeout", 600));
  const bool stream = args.has("stream");
  const std::string api_key = args.get("api-key", ""), output = args.get("output", "bench-serve.json");
  args.reject_unknown();
  std::smatch m;
  LATTICE_CHECK(std::regex_match(url, m, std::regex(R"(http://([^:/]+):(\d+)/?)")), "--url must be http://HOST:PORT, got ", url);
  const std::string host = m[1].str();
  const int port = std::stoi(m[2].str());
  LATTICE_CHECK(rate >= 0 && n > 0 && input_len > 0 && output_len > 0, "--rate must be >= 0 and --requests, --input-len, --output-len > 0");
  LATTICE_CHECK(shared_prefix >= 0 && shared_prefix <= input_len, "--shared-prefix must be in [0, --input-len], got ",
                shared_prefix);
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);

  // The served model's vocabulary bounds the random prompt ids.
  httplib::Client probe(host, port);
  const httplib::Result models = probe.Get("/v1/models", headers);
  LATTICE_CHECK(models && models->status == 200, "cannot read ", url, "/v1/models (",
                models ? "HTTP " + std::to_string(models->status) : httplib::to_string(models.error()), ")");
  const json card = json::parse(models->body)["data"][0];
  const int64_t vocab = card.value("vocab_size", int64_t{32000});
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::uniform_int_distribution<int64_t> token(std::min<int64_t>(10, vocab - 1), vocab - 1);
  std::exponential_distribution<double> gap(rate > 0 ? rate : 1);
  std::vector<json> bodies;
  std::vector<double> arrivals;
  double t = 0;
  std::vector<int64_t> system(static_cast<size_t>(shared_prefix));
  for (int64_t& id : system) id = token(rng);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> prompt = system;
    while (static_cast<int64_t>(prompt.size()) < input_len) prompt.push_back(token(rng));
    json body = {{"model", card["id"]}, {"prompt", prompt}, {"max_tokens", output_len}, {"ignore_eos", true},
                 {"temperature", 1.0}, {"seed", seed + i}};
    if (stream) body.update({{"stream", true}, {"stream_options", {{"include_usage", true}}}});
    bodies.push_back(std::move(body));
    arrivals.push_back(t);
    if (rate > 0) t += gap(rng);
  }

  std::fprintf(stderr, "bench-serve: %lld requests at %s/s to %s (input %lld, output %lld tokens%s)\n",
               static_cast<long long>(n), rate > 0 ? std::to_string(rate).c_str() : "inf", url.c_str(),
               static_cast<long long>(input_len), static_cast<long long>(output_len), stream ? ", streamed" : "");
  std::vector<Record> records(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  const Clock::time_point t0 = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrivals[i])));
    threads.emplace_back(send_one, host, port, headers, bodies[i], stream, timeout_s, t0, std::ref(records[i]));
  }
  for (std::thread& th : threads) th.join();
  const double duration = std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<double> ttft, itl, e2e;
  int64_t ok = 0, out_tokens = 0, in_tokens = 0;
  json per_request = json::array();
  for (const Record& r : records) {
    per_request.push_back({{"start", r.start}, {"ttft", std::isnan(r.ttft) ? json(nullptr) : json(r.ttft)}, {"e2e", r.e2e},
                           {"itl", r.itl}, {"prompt_tokens", r.prompt_tokens}, {"output_tokens", r.output_tokens},
                           {"error", r.error.empty() ? json(nullptr) : json(r.error)}});
    if (!r.error.empty()) continue;
    ++ok;
    out_tokens += r.output_tokens;
    in_tokens += r.prompt_tokens;
    e2e.push_back(r.e2e);
    if (!std::isnan(r.ttft)) ttft.push_back(r.ttft);
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
  }
  const json summary = {{"url", url}, {"model", card["id"]}, {"rate", rate}, {"requests", n}, {"succeeded", ok},
                        {"failed", n - ok}, {"input_len", input_len}, {"shared_prefix", shared_prefix}, {"output_len", output_len}, {"stream", stream},
                        {"duration_s", duration}, {"request_throughput", ok / duration},
                        {"output_token_throughput", out_tokens / duration},
                        {"total_token_throughput", (in_tokens + out_tokens) / duration},
                        {"ttft_s", summary_of(ttft)}, {"itl_s", summary_of(itl)}, {"e2e_s", summary_of(e2e)}};
  std::ofstream(output) << json{{"summary", summary}, {"requests", per_request}}.dump(2) << "\n";

  std::printf("requests: %lld ok, %lld failed in %.2f s\n", static_cast<long long>(ok), static_cast<long long>(n - ok), duration);
  std::printf("throughput: %.2f requests/s, %.1f output tokens/s, %.1f total tokens/s\n", ok / duration,
              out_tokens / duration, (in_tokens + out_tokens) / duration);
  auto row = [](const char* name, const json& s) {
    if (s.is_null()) return std::printf("%-22s n/a (needs --stream)\n", name), void();
    std::printf("%-22s mean %8.2f  p50 %8.2f  p90 %8.2f  p99 %8.2f ms\n", name, 1000 * s["mean"].get<double>(),
                1000 * s["p50"].get<double>(), 1000 * s["p90"].get<double>(), 1000 * s["p99"].get<double>());
  };
  row("time to first token", summary["ttft_s"]);
  row("inter-token latency", summary["itl_s"]);
  row("end-to-end latency", summary["e2e_s"]);
  for (const Record& r : records)
    if (!r.error.empty()) {
      std::fprintf(stderr, "first failure: %s\n", r.error.c_str());
      break;
    }
  std::fprintf(stderr, "wrote %s\n", output.c_str());
  return ok == n ? 0 : 1;
}

}  // namespace lattice::launcher
