// Parses split template segments into a syntax tree; throws ChatTemplateError naming the line.
#pragma once

#include <string>

#include "launcher/serve/jinja/ast.h"

namespace lattice::serve::jinja {

Body parse_template(const std::string& source);

}  // namespace lattice::serve::jinja
