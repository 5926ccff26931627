#include "launcher/serve/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include "engine/core/error.h"
#include "launcher/serve/access_policy.h"
#include "launcher/serve/api_error.h"
#include "launcher/serve/choice_text.h"
#include "serve/lattice_service.grpc.pb.h"

namespace lattice::serve {

using json = nlohmann::ordered_json;

namespace {

grpc::Status to_status(const ApiError& e) {
  const grpc::StatusCode code = e.status == 400   ? grpc::StatusCode::INVALID_ARGUMENT
                                : e.status == 401 ? grpc::StatusCode::UNAUTHENTICATED
                                : e.status == 404 ? grpc::StatusCode::NOT_FOUND
                                : e.status == 413 || e.status == 429 ? grpc::StatusCode::RESOURCE_EXHAUSTED
                                : e.status == 503 ? grpc::StatusCode::UNAVAILABLE
                                                  : grpc::StatusCode::INTERNAL;
  return grpc::Status(code, e.param.empty() ? e.what() : e.param + ": " + e.what());
}

// The HTTP status a gRPC outcome corresponds to, so that one requests_total series covers both APIs.
int http_status(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::CANCELLED: return 499;
    default: return 500;
  }
}

// The gRPC request as the /v1/completions body it means, so both APIs share one validator.
json as_completion_body(const v1::GenerateRequest& r) {
  json body = json::object();
  if (r.has_token_ids()) body["prompt"] = std::vector<int32_t>(r.token_ids().ids().begin(), r.token_ids().ids().end());
  else if (r.prompt_case() == v1::GenerateRequest::kText) body["prompt"] = r.text();
  if (!r.model().empty()) body["model"] = r.model();
  if (r.has_max_tokens()) body["max_tokens"] = r.max_tokens();
  if (r.has_temperature()) body["temperature"] = r.temperature();
  if (r.has_top_p()) body["top_p"] = r.top_p();
  if (r.has_top_k()) body["top_k"] = r.top_k();
  if (r.has_min_p()) body["min_p"] = r.min_p();
  if (r.has_presence_penalty()) body["presence_penalty"] = r.presence_penalty();
  if (r.has_frequency_penalty()) body["frequency_penalty"] = r.frequency_penalty();
  if (r.has_repetition_penalty()) body["repetition_penalty"] = r.repetition_penalty();
  if (r.has_seed()) body["seed"] = r.seed();
  if (r.stop_size() > 0) body["stop"] = std::vector<std::string>(r.stop().begin(), r.stop().end());
  if (r.stop_token_ids_size() > 0) body["stop_token_ids"] = std::vector<int32_t>(r.stop_token_ids().begin(), r.stop_token_ids().end());
  if (r.ignore_eos()) body["ignore_eos"] = true;
  if (r.logprobs() != 0) body["logprobs"] = r.logprobs();
  if (r.priority() != 0) body["priority"] = r.priority();
  return body;
}

}  // namespace

class GrpcService final : public v1::Lattice::Service {
 public:
  explicit GrpcService(ServeContext& ctx) : ctx_(ctx) {}

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    return counted("grpc/Generate", [&] { return generate(*context, *request, *writer); });
  }

  grpc::Status Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override {
    return counted("grpc/Tokenize", [&] {
      authenticate(*context);
      const ModelInfo* model = ctx_.model();
      if (!model) throw ApiError(503, "service_unavailable", "the model is still loading");
      if (!model->tokenizer) throw invalid_field("text", "this model has no tokenizer.json");
      try {
        for (int32_t id : model->tokenizer->encode(request->text(), request->add_special_tokens())) {
          response->add_ids(id);
          response->add_tokens(model->tokenizer->id_to_token(id));
        }
      } catch (const Error& e) {
        throw invalid_field("text", e.what());
      }
      return grpc::Status::OK;
    });
  }

  grpc::Status Health(grpc::ServerContext*, const v1::HealthRequest*, v1::HealthResponse* response) override {
    const ModelInfo* model = ctx_.model();
    response->set_ready(model != nullptr && ctx_.bridge.accepting());  // not while draining
    if (model) response->set_model(model->name);
    response->set_pending_sequences(ctx_.bridge.pending());
    return grpc::Status::OK;
  }

 private:
  template <typename Fn>
  grpc::Status counted(const char* endpoint, Fn&& fn) {
    grpc::Status status;
    try {
      status = fn();
    } catch (const ApiError& e) {
      status = to_status(e);
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    ctx_.metrics.add("lattice_requests_total", {{"endpoint", endpoint}, {"status", std::to_string(http_status(status))}});
    return status;
  }

  void authenticate(const grpc::ServerContext& context) const {
    const auto& md = context.client_metadata();
    auto it = md.find("authorization");
    check_bearer(it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size()), ctx_.api_key,
                 "metadata 'authorization: Bearer <key>'");
  }

  grpc::Status generate(grpc::ServerContext& context, const v1::GenerateRequest& request,
                        grpc::ServerWriter<v1::GenerateResponse>& writer) {
    authenticate(context);
    ApiRequest api = parse_completion_request(as_completion_body(request));
    prepare_prompt(api, ctx_, false);
    const ModelInfo* model = ctx_.model();
    Request r;
    r.prompt = api.prompt_ids;
    r.params = api.params;
    r.priority = api.priority;
    std::shared_ptr<RequestStream> stream;
    try {
      stream = ctx_.bridge.submit({std::move(r)});
    } catch (const Overloaded& e) {
      throw ApiError(429, "rate_limit_error", e.what());
    } catch (const Unavailable& e) {
      throw ApiError(503, "service_unavailable", e.what());
    }
    // Whatever way this returns, an unfinished sequence is cancelled.
    struct Guard {
      EngineBridge& bridge;
      const RequestStream& stream;
      ~Guard() { bridge.cancel(stream); }
    } guard{ctx_.bridge, *stream};
    std::optional<ChoiceText> text;
    if (model->tokenizer) text.emplace(*model->tokenizer, api.stop);
    int32_t completion = 0;
    while (true) {
      std::optional<ChoiceEvent> e = stream->next(std::chrono::milliseconds(100));
      if (!e) {
        if (context.IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled");
        continue;
      }
      if (!e->error.empty())
        throw ApiError(e->status, e->status >= 500 ? "server_error" : "invalid_request_error", e->error);
      if (e->finish == FinishReason::cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      v1::GenerateResponse out;
      if (e->token) {
        ++completion;
        out.set_token_id(e->token->token);
        out.set_logprob(e->token->logprob);
        for (const TokenLogprob& t : e->token->top) {
          v1::TokenLogprob* lp = out.add_top_logprobs();
          lp->set_token_id(t.token);
          lp->set_logprob(t.logprob);
        }
        if (text) out.set_text(text->push(*e->token));
      }
      std::string finish = e->finish == FinishReason::none ? "" : finish_reason_name(e->finish);
      if (text && text->stopped()) finish = "stop";
      if (!finish.empty()) {
        if (text) out.set_text(out.text() + text->finish());
        out.set_finish_reason(finish);
        out.set_prompt_tokens(static_cast<int32_t>(api.prompt_ids.size()));
        out.set_completion_tokens(completion);
      }
      if (!writer.Write(out)) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      if (!finish.empty()) return grpc::Status::OK;
    }
  }

  ServeContext& ctx_;
};

GrpcFrontEnd::GrpcFrontEnd(ServeContext& context, size_t max_message_bytes)
    : context_(context), max_message_bytes_(max_message_bytes), service_(std::make_unique<GrpcService>(context)) {}

GrpcFrontEnd::~GrpcFrontEnd() { stop(); }

int GrpcFrontEnd::start(const std::string& host, int port) {
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(), &bound);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes_));
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  LATTICE_CHECK(server_ && bound > 0, "cannot listen for gRPC on ", host, ":", port, " (address in use or not local)");
  return bound;
}

void GrpcFrontEnd::stop() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_.reset();
}

}  // namespace lattice::serve
