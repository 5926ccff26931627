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

}  // namespace lattice::serve::jinja
