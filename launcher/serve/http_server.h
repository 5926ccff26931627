// The OpenAI-compatible HTTP front end (cpp-httplib): POST /v1/completions, POST /v1/chat/completions
// (JSON or Server-Sent Events), GET /v1/models, GET /health, GET /metrics. Runs on its own threads and
// talks to the engine only through the ServeContext's EngineBridge.
#pragma once

#include <memory>
#include <string>
#include <atomic>
#include <thread>

#include "launcher/serve/serve_context.h"

namespace httplib {
class Server;
}

namespace lattice::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port
  size_t max_body_bytes = 4 << 20;
  int threads = 64;
};

class HttpFrontEnd {
 public:
  HttpFrontEnd(ServeContext& context, HttpOptions options);
  ~HttpFrontEnd();
  // Binds (throws naming the address when it cannot) and starts serving on a background thread; returns
  // the port.
  int start();
  // Stops accepting and joins the listener; open streams end with the engine.
  void stop();

 private:
  void routes();
  ServeContext& context_;
  HttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int listen_socket_ = -1;
};

}  // namespace lattice::serve
