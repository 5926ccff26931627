#include "launcher/serve/access_policy.h"

#include <algorithm>
#include <cctype>

#include "launcher/serve/api_error.h"

namespace lattice::serve {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "host" of "host:port", "[::1]" of "[::1]:port".
std::string_view host_of(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') return authority.substr(0, authority.find(']') + 1);
  return authority.substr(0, authority.find(':'));
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

void check_bearer(std::string_view authorization, const std::string& key, const char* how) {
  if (key.empty()) return;
  authorization = trim(authorization);
  if (authorization.empty())
    throw ApiError(401, "authentication_error", std::string("missing API key: send ") + how, {},
                   "missing_api_key");
  const size_t space = authorization.find(' ');
  const bool bearer = space != std::string_view::npos && lower(authorization.substr(0, space)) == "bearer";
  if (!bearer || !constant_time_equal(trim(authorization.substr(space + 1)), key))
    throw ApiError(401, "authentication_error", "incorrect API key", {}, "invalid_api_key");
}

bool is_foreign_origin(std::string_view origin, std::string_view host_header, std::string_view listen_host) {
  if (origin.empty()) return false;  // not a browser, or a same-origin GET
  const std::string o = lower(trim(origin)), host = lower(trim(host_header));
  if (host.empty() || (o != "http://" + host && o != "https://" + host)) return true;
  const std::string name(host_of(host));
  const bool loopback = name == "localhost" || name.rfind("127.", 0) == 0 || name == "[::1]";
  return !(loopback || name == lower(listen_host));
}

bool is_json_media_type(std::string_view content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';')))) == "application/json";
}

}  // namespace lattice::serve
