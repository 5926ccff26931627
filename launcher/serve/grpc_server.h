// The gRPC front end (lattice_service.proto): Generate streams tokens and text, Tokenize, Health. Requests
// are validated exactly like /v1/completions (they are mapped onto the same parser) and reach the engine
// through the same EngineBridge.
#pragma once

#include <memory>
#include <string>

#include "launcher/serve/serve_context.h"

namespace grpc {
class Server;
}

namespace lattice::serve {

class GrpcService;

class GrpcFrontEnd {
 public:
  explicit GrpcFrontEnd(ServeContext& context, size_t max_message_bytes = 4 << 20);
  ~GrpcFrontEnd();
  // Listens on host:port (0 picks a free port); returns the port; throws when it cannot bind.
  int start(const std::string& host, int port);
  void stop();

 private:
  ServeContext& context_;
  size_t max_message_bytes_;
  std::unique_ptr<GrpcService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace lattice::serve
