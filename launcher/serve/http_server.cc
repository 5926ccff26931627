#include "launcher/serve/http_server.h"

#include <chrono>

#include <ctime>
#include <set>

#include <httplib.h>

#include "engine/core/error.h"
#include "launcher/serve/api_error.h"
#include "launcher/serve/openai_session.h"

namespace lattice::serve {

using json = nlohmann::ordered_json;

namespace {

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(json_text(error_body(e)), "application/json");
}

// Bearer-token check for /v1/*; throws ApiError 401.
void authenticate(const httplib::Request& req, const std::string& api_key) {
  if (api_key.empty()) return;
  const std::string header = req.get_header_value("Authorization");
  if (header.empty())
    throw ApiError(401, "authentication_error", "missing API key: send 'Authorization: Bearer <key>'", {}, "missing_api_key");
  if (header != "Bearer " + api_key) throw ApiError(401, "authentication_error", "incorrect API key", {}, "invalid_api_key");
}

}  // namespace

HttpFrontEnd::HttpFrontEnd(ServeContext& context, HttpOptions options)
    : context_(context), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_read_timeout(30, 0);
  routes();
}

HttpFrontEnd::~HttpFrontEnd() { stop(); }

int HttpFrontEnd::start() {
  const int port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                                      : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  LATTICE_CHECK(port > 0, "cannot listen on ", options_.host, ":", options_.port, " (address in use or not local)");
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  // httplib's stop() does nothing until the listen loop has marked itself running; a stop() in that window
  // (e.g. the model fails to load at once) would leave the loop, and the join in stop(), waiting forever.
  while (!server_->is_running() && !listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

void HttpFrontEnd::stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void HttpFrontEnd::routes() {
  ServeContext& ctx = context_;
  httplib::Server& s = *server_;

  s.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    if (!ctx.model()) return send_error(res, ApiError(503, "service_unavailable", "the model is still loading", {}, "loading"));
    res.set_content(json{{"status", "ok"}}.dump(), "application/json");
  });

  s.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx.metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8");
  });

  s.Get("/v1/models", [&ctx](const httplib::Request& req, httplib::Response& res) {
    try {
      authenticate(req, ctx.api_key);
      const ModelInfo* model = ctx.model();
      if (!model) throw ApiError(503, "service_unavailable", "the model is still loading", {}, "loading");
      json card = {{"id", model->name}, {"object", "model"}, {"created", 0}, {"owned_by", "lattice"},
                   {"max_model_len", model->limits.max_positions}, {"vocab_size", model->limits.vocab_size}};
      res.set_content(json{{"object", "list"}, {"data", json::array({card})}}.dump(), "application/json");
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });

  auto generate = [&ctx](bool chat) {
    return [&ctx, chat](const httplib::Request& req, httplib::Response& res) {
      try {
        authenticate(req, ctx.api_key);
        const json body = parse_body(req.body);
        ApiRequest request = chat ? parse_chat_request(body) : parse_completion_request(body);
        prepare_prompt(request, ctx, true);
        const bool stream = request.stream;  // parsed and validated with the rest ("stream": null is false)
        const std::optional<std::string> cache_key = ctx.responses ? ctx.responses->key(request) : std::nullopt;
        if (cache_key) {
          std::optional<json> hit = ctx.responses->lookup(*cache_key, request.chat);
          res.set_header("X-Lattice-Cache", hit ? "hit" : "miss");
          if (hit && stream) {
            res.set_header("Cache-Control", "no-cache");
            res.set_content(cached_stream(*hit, request.chat, request.include_usage), "text/event-stream");
          }
          if (hit && !stream) res.set_content(json_text(*hit), "application/json");
          if (hit) return;
        }
        // Stores a complete non-streamed response of a cacheable request.
        auto keep = [&ctx, cache_key](const json& result) {
          if (cache_key) ctx.responses->store(*cache_key, result);
        };
        const ModelInfo* model = ctx.model();
        auto session = std::make_shared<ApiSession>(std::move(request), ctx.bridge, *model->tokenizer, model->name);
        session->start();
        if (!stream) {
          // Most requests finish within a second and get a plain response with the right status. Longer ones
          // switch to a chunked body led by a space every second (JSON allows leading whitespace): a write
          // that fails means the client left, and ~ApiSession cancels its sequences.
          if (std::optional<json> result = session->wait_result(std::chrono::seconds(1))) {
            keep(*result);
            res.set_content(json_text(*result), "application/json");
            return;
          }
          res.set_chunked_content_provider("application/json", [session, keep](size_t, httplib::DataSink& sink) {
            std::optional<json> result;
            try {
              result = session->wait_result(std::chrono::seconds(1));
              if (result) keep(*result);
            } catch (const ApiError& e) {
              result = error_body(e);  // the status line has gone out already
            }
            if (!result) return sink.write(" ", 1);
            const std::string text = json_text(*result);
            if (!sink.write(text.data(), text.size())) return false;
            sink.done();
            return true;
          });
          return;
        }
        res.set_header("Cache-Control", "no-cache");
        auto idle = std::make_shared<int>(0);
        res.set_chunked_content_provider("text/event-stream", [session, idle](size_t, httplib::DataSink& sink) {
          std::optional<std::string> frames = session->next_frames(std::chrono::milliseconds(100));
          if (!frames) {
            sink.done();
            return true;
          }
          // A comment every second of silence finds clients that left while the request waits.
          if (frames->empty() && ++*idle % 10 == 0) *frames = ": keep-alive\n\n";
          if (frames->empty()) return true;
          *idle = 0;
          return sink.write(frames->data(), frames->size());  // false: the client is gone, ~ApiSession cancels
        });
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, ApiError(400, "invalid_request_error", e.what()));
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, "internal_error", e.what()));
      }
    };
  };
  s.Post("/v1/completions", generate(false));
  s.Post("/v1/chat/completions", generate(true));

  // Statuses httplib sets itself (413 over the body limit, 404, 400 on bad framing) in the OpenAI shape.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      send_error(res, ApiError(413, "invalid_request_error", "the request body is over the server's limit", {}, "payload_too_large"));
    else if (res.status == 404)
      send_error(res, ApiError(404, "invalid_request_error", "no such endpoint", {}, "not_found"));
    else
      send_error(res, ApiError(res.status, "invalid_request_error", "bad request", {}, std::to_string(res.status)));
  });
  s.set_logger([&ctx](const httplib::Request& req, const httplib::Response& res) {
    static const std::set<std::string> known = {"/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions"};
    const std::string endpoint = known.count(req.path) ? req.path : "other";  // bounded label values
    ctx.metrics.add("lattice_requests_total", {{"endpoint", endpoint}, {"status", std::to_string(res.status)}});
  });
}

}  // namespace lattice::serve
