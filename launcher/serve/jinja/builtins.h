// Filters (`x | trim`), tests (`x is defined`), methods (`s.startswith(...)`, `d.items()`) and global
// functions (namespace, range, raise_exception, strftime_now) of the template subset.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "launcher/serve/jinja/ast.h"

namespace lattice::serve::jinja {

using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;

Value apply_filter(const std::string& name, const Value& input, const Args& args, const Kwargs& kwargs);
bool apply_test(const std::string& name, const Value& input, const Args& args);
// False when `object` has no method `name` (the caller then reports it).
bool has_method(const Value& object, const std::string& name);
Value call_method(const Value& object, const std::string& name, const Args& args, const Kwargs& kwargs);
bool has_global(const std::string& name);
Value call_global(const std::string& name, const Args& args, const Kwargs& kwargs);

// Python's str.strip family: `chars` null strips whitespace.
std::string strip(const std::string& s, const Value* chars, bool left, bool right);

}  // namespace lattice::serve::jinja
