// Python-flavoured semantics of template values: truthiness, str(), equality and ordering, and the
// json.dumps text of Hugging Face's tojson filter.
#pragma once

#include <string>

#include "launcher/serve/jinja/ast.h"

namespace lattice::serve::jinja {

bool truthy(const Value& v);
// What {{ v }} prints: strings as they are, None as "None", lists and dicts as Python repr.
std::string to_output(const Value& v);
std::string python_repr(const Json& j);
// json.dumps(j, ensure_ascii=False, indent=indent): ", " and ": " separators, or pretty with `indent`.
std::string py_json_dumps(const Json& j, int indent = -1, int depth = 0);
bool equal(const Value& a, const Value& b);
// -1, 0, 1; throws ChatTemplateError for values Python would not order.
int compare(const Value& a, const Value& b);
const char* type_name(const Value& v);

// What one parse or render may build, so that no template, and no request it renders, can exhaust the stack,
// the memory or the time of the server; going past one is a ChatTemplateError.
inline constexpr size_t kMaxTextBytes = size_t{16} << 20;  // a string value, and the output
inline constexpr size_t kMaxItems = size_t{1} << 20;       // a list made by range(), +, or looped over
inline constexpr int kMaxDepth = 200;                       // nested tags and expressions, parsed or evaluated
inline constexpr long long kMaxSteps = 500'000;  // expressions evaluated, tags run and loop iterations per render

// Throws ChatTemplateError when `n` is past kMaxTextBytes (for text) or kMaxItems (for a list).
void check_text_size(size_t n);
void check_items(size_t n);

}  // namespace lattice::serve::jinja
