// An error answered in the OpenAI shape: {"error": {"message", "type", "param", "code"}} with an HTTP status
// (the gRPC front end maps the same statuses to gRPC codes).
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace lattice::serve {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string type, std::string message, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type;   // invalid_request_error, authentication_error, rate_limit_error, ...
  std::string param;  // the offending field, when one is to blame
  std::string code;
};

inline ApiError invalid_field(const std::string& param, const std::string& message) {
  return ApiError(400, "invalid_request_error", message, param, "invalid_value");
}

// JSON text for the wire. Messages can quote client bytes that are not UTF-8 (a parse error names them):
// those become U+FFFD instead of making dump() throw in the middle of a response.
template <typename Json>
std::string json_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

inline nlohmann::ordered_json error_body(const ApiError& e) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s); };
  return {{"error", {{"message", e.what()}, {"type", e.type}, {"param", or_null(e.param)}, {"code", or_null(e.code)}}}};
}

}  // namespace lattice::serve
