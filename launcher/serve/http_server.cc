#include "launcher/serve/http_server.h"

#include <chrono>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include <sys/socket.h>

#include <httplib.h>

#include "engine/core/error.h"
#include "launcher/serve/access_policy.h"
#include "launcher/serve/api_error.h"
#include "launcher/serve/openai_session.h"

namespace lattice::serve {

using json = nlohmann::ordered_json;

namespace {

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(json_text(error_body(e)), "application/json");
}

// The methods each endpoint answers; another method on one of these paths is a 405.
const std::map<std::string, std::string>& allowed_methods() {
  static const std::map<std::string, std::string> allowed = {
      {"/health", "GET"}, {"/metrics", "GET"}, {"/v1/models", "GET"}, {"/v1/completions", "POST"},
      {"/v1/chat/completions", "POST"}};
  return allowed;
}

// The checks of a /v1 request that need no body, in order: a browser page from a foreign origin (403, only
// without an API key: with one, the page cannot send it), the API key (401), and a body declared as JSON
// (415 without an API key: other types are ones a page can send cross-origin without a preflight; multipart
// forms always).
void admit(const httplib::Request& req, const ServeContext& ctx, const std::string& listen_host, bool has_body) {
  const bool open = ctx.api_key.empty();
  if (open && is_foreign_origin(req.get_header_value("Origin"), req.get_header_value("Host"), listen_host))
    throw ApiError(403, "permission_error", "cross-origin browser requests are refused (Origin '" +
                   req.get_header_value("Origin") + "'); start the server with an API key to allow them", {}, "forbidden_origin");
  check_bearer(req.get_header_value("Authorization"), ctx.api_key, "'Authorization: Bearer <key>'");
  const std::string type = req.get_header_value("Content-Type");
  if (has_body && ((open && !is_json_media_type(type)) || req.is_multipart_form_data()))
    throw ApiError(415, "invalid_request_error", "the request body must be sent with 'Content-Type: application/json' (got '" + type + "')", {}, "unsupported_media_type");
}

// The body, read only now (after admit) and never past `limit` bytes: a declared Content-Length over the
// limit is refused unread, a chunked body as soon as it passes the limit (413); the connection then closes.
std::string read_body(const httplib::Request& req, const httplib::ContentReader& reader, size_t limit) {
  const ApiError too_large(413, "invalid_request_error", "the request body is over the server's limit of " +
                           std::to_string(limit >> 10) + " KB", {}, "payload_too_large");
  if (req.has_header("Content-Length") && req.get_header_value<uint64_t>("Content-Length") > limit) throw too_large;
  std::string body;
  bool over = false;
  const bool read = reader([&](const char* data, size_t n) {
    over = body.size() + n > limit;
    if (!over) body.append(data, n);
    return !over;
  });
  if (over) throw too_large;
  if (!read) throw ApiError(400, "invalid_request_error", "the request body could not be read", {}, "bad_body");
  return body;
}

}  // namespace

HttpFrontEnd::HttpFrontEnd(ServeContext& context, HttpOptions options)
    : context_(context), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_read_timeout(30, 0);
  // One request per connection. A body refused unread (or half read, once past the limit) must not stay on
  // the connection: httplib 0.11 would parse its bytes as the next request line, buffering a newline-free
  // body whole (100 MB sent after a 413 grew the server by 100 MB). Closing after each response is the only
  // way this httplib offers to drop them; a new loopback/LAN connection costs far less than any generation.
  server_->set_keep_alive_max_count(1);
  // SO_REUSEADDR (a restart binds at once) but not httplib's default SO_REUSEPORT, with which a second
  // server would share the port instead of failing; the socket is kept to widen its backlog in start().
  server_->set_socket_options([this](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket_ = sock;
  });
  routes();
}

HttpFrontEnd::~HttpFrontEnd() { stop(); }

int HttpFrontEnd::start() {
  const int port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                                      : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  LATTICE_CHECK(port > 0, "cannot listen on ", options_.host, ":", options_.port, " (address in use or not local)");
  // httplib listens with a backlog of 5 (compiled into the library): a burst of connections overflows it and
  // the kernel drops their SYNs, leaving clients waiting for retransmits. listen() again on the bound socket
  // only changes the backlog (capped by net.core.somaxconn).
  LATTICE_CHECK(::listen(listen_socket_, SOMAXCONN) == 0, "cannot set the listen backlog: ", std::strerror(errno));
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
  const std::string listen_host = options_.host;
  const size_t max_body = options_.max_body_bytes;

  s.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    if (!ctx.model()) return send_error(res, ApiError(503, "service_unavailable", "the model is still loading", {}, "loading"));
    // Failed (an engine error, a stalled or dead rank) or draining after SIGTERM: a load balancer sends new
    // requests elsewhere.
    if (std::optional<std::string> failure = ctx.bridge.failure())
      return send_error(res, ApiError(503, "service_unavailable", "the engine has failed: " + *failure, {}, "engine_failed"));
    if (!ctx.bridge.accepting())
      return send_error(res, ApiError(503, "service_unavailable", "the server is shutting down", {}, "draining"));
    res.set_content(json{{"status", "ok"}}.dump(), "application/json");
  });

  s.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx.metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8");
  });

  s.Get("/v1/models", [&ctx, listen_host](const httplib::Request& req, httplib::Response& res) {
    try {
      admit(req, ctx, listen_host, false);
      const ModelInfo* model = ctx.model();
      if (!model) throw ApiError(503, "service_unavailable", "the model is still loading", {}, "loading");
      json card = {{"id", model->name}, {"object", "model"}, {"created", 0}, {"owned_by", "lattice"},
                   {"max_model_len", model->limits.max_positions}, {"vocab_size", model->limits.vocab_size}};
      res.set_content(json{{"object", "list"}, {"data", json::array({card})}}.dump(), "application/json");
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });

  auto generate = [&ctx, listen_host, max_body](bool chat) {
    return [&ctx, listen_host, max_body, chat](const httplib::Request& req, httplib::Response& res,
                                                 const httplib::ContentReader& reader) {
      try {
        admit(req, ctx, listen_host, true);
        const json body = parse_body(read_body(req, reader, max_body));
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
            } catch (const std::exception& e) {
              session->cancel();
              result = error_body(ApiError(500, "server_error", e.what()));
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
          std::optional<std::string> frames;
          try {
            frames = session->next_frames(std::chrono::milliseconds(100));
          } catch (const std::exception& e) {
            // Nothing may escape a content provider (httplib would let it end the process): the stream ends
            // with an error event and [DONE].
            session->cancel();
            frames = sse_frame(error_body(ApiError(500, "server_error", e.what()))) + "data: [DONE]\n\n";
            sink.write(frames->data(), frames->size());
            sink.done();
            return true;
          }
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
        send_error(res, ApiError(500, "server_error", e.what()));
      }
    };
  };
  s.Post("/v1/completions", generate(false));
  s.Post("/v1/chat/completions", generate(true));

  // Statuses httplib sets itself (413 over the body limit, 404, 400 on bad framing) in the OpenAI shape; a
  // known path asked with another method is a 405.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const auto allowed = allowed_methods().find(req.path);
    if (res.status == 404 && allowed != allowed_methods().end()) {
      res.set_header("Allow", allowed->second);
      send_error(res, ApiError(405, "invalid_request_error", req.path + " takes " + allowed->second + ", not " + req.method,
                               {}, "method_not_allowed"));
    } else if (res.status == 413) {
      send_error(res, ApiError(413, "invalid_request_error", "the request body is over the server's limit", {}, "payload_too_large"));
    } else if (res.status == 404) {
      send_error(res, ApiError(404, "invalid_request_error", "no such endpoint", {}, "not_found"));
    } else {
      send_error(res, ApiError(res.status, "invalid_request_error", "bad request", {}, std::to_string(res.status)));
    }
  });
  s.set_logger([&ctx](const httplib::Request& req, const httplib::Response& res) {
    const std::string endpoint = allowed_methods().count(req.path) ? req.path : "other";  // bounded label values
    ctx.metrics.add("lattice_requests_total", {{"endpoint", endpoint}, {"status", std::to_string(res.status)}});
  });
}

}  // namespace lattice::serve
