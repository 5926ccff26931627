// Who may drive the server: the API-key check (constant time, any case of the `Bearer` scheme) shared by the
// HTTP and gRPC front ends, and the rules that keep a web page from driving a server that has no API key
// (a request from a foreign browser origin, or a POST body that is not declared as JSON, is refused).
#pragma once

#include <string>
#include <string_view>

namespace lattice::serve {

// Equal strings, in time that depends only on the lengths (no early exit on the first differing byte).
bool constant_time_equal(std::string_view a, std::string_view b);

// Throws ApiError 401 unless `authorization` is "<Bearer in any case> <key>". `how` tells a client without
// a key what to send ("'Authorization: Bearer <key>'"). No-op when `key` is empty.
void check_bearer(std::string_view authorization, const std::string& key, const char* how);

// True when a browser sent the request from a page that is not this server itself: `origin` (the Origin
// header, "" when absent) is not "http(s)://" + `host_header`, or that host is not a loopback name
// (localhost, 127.x, [::1]) or `listen_host` (which a DNS-rebinding page cannot be).
bool is_foreign_origin(std::string_view origin, std::string_view host_header, std::string_view listen_host);

// "application/json", in any case and with parameters ("; charset=utf-8").
bool is_json_media_type(std::string_view content_type);

}  // namespace lattice::serve
