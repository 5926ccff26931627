// A parsed template and its interpreter. Variables live in a scope chain: each loop iteration gets its own
// scope (so {% set %} inside a loop does not leak, as in Jinja); namespace() objects carry state out.
#pragma once

#include <string>

#include "launcher/serve/jinja/ast.h"

namespace lattice::serve::jinja {

class Template {
 public:
  // Throws ChatTemplateError on a syntax error or an unsupported tag.
  explicit Template(const std::string& source);
  // `variables` is a JSON object of the template's globals. Throws ChatTemplateError.
  std::string render(const Json& variables) const;

 private:
  Body body_;
};

}  // namespace lattice::serve::jinja
