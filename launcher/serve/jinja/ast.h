// The syntax tree of the Jinja subset chat templates use: text, {{ expressions }}, {% if/elif/else %},
// {% for %} (with loop.*, an `if` filter and an else branch), {% set %} (names and namespace attributes),
// {% macro %} (called like a function, returns its output).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lattice::serve::jinja {

using Json = nlohmann::ordered_json;

// A template value: JSON data, or Jinja's `undefined` (a missing variable, attribute or key).
struct Value {
  Json json;
  bool undefined = false;
  static Value undef() { return Value{Json(), true}; }
};

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind { literal, name, list, dict, attr, index, slice, call, filter, test, unary, binary, conditional };
  Kind kind;
  Value value;                 // literal
  std::string name;            // name, attribute, filter, test or operator
  std::vector<ExprPtr> args;   // operands; call: callee then positional arguments; slice: object, start, stop, step
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // call / filter / test keyword arguments
  bool negated = false;        // test: `is not`
  int line = 0;
};

struct Node;
using NodePtr = std::shared_ptr<const Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind { text, output, if_, for_, set, macro };
  Kind kind;
  std::string text;                                 // text
  ExprPtr expr;                                     // output; set: value; for: the iterable
  std::vector<std::pair<ExprPtr, Body>> branches;   // if/elif (condition) and else (null condition)
  std::vector<std::string> targets;                 // for: loop variables (1, or 2 to unpack); set: name;
                                                    // macro: name, then parameter names
  std::vector<ExprPtr> defaults;                    // macro: default per parameter (null when none)
  std::string attr;                                 // set ns.attr = ...
  ExprPtr filter;                                   // for ... if filter
  Body body, else_body;                             // for
  int line = 0;
};

}  // namespace lattice::serve::jinja
