#include "launcher/serve/jinja/template.h"

#include <algorithm>
#include <climits>
#include <map>

#include "launcher/serve/chat_template.h"
#include "launcher/serve/jinja/builtins.h"
#include "launcher/serve/jinja/parser.h"
#include "launcher/serve/jinja/values.h"

namespace lattice::serve::jinja {

namespace {

class Interpreter {
 public:
  explicit Interpreter(const Json& globals) {
    scopes_.emplace_back();
    for (auto it = globals.begin(); it != globals.end(); ++it) scopes_.back()[it.key()] = Value{*it};
  }

  void run(const Body& body) {
    for (const NodePtr& n : body) exec(*n);
  }
  std::string& output() { return out_; }

 private:
  [[noreturn]] static void fail(int line, const std::string& message) {
    throw ChatTemplateError("line " + std::to_string(line) + ": " + message);
  }

  Value* lookup(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto v = it->find(name);
      if (v != it->end()) return &v->second;
    }
    return nullptr;
  }

  // Counts one step, and one level of nesting while `depth` lives, against the render's bounds.
  struct Step {
    Step(Interpreter& in, int line) : in(in) {
      if (++in.steps_ > kMaxSteps) fail(line, "the template runs past " + std::to_string(kMaxSteps) + " steps");
      if (++in.nesting_ > kMaxDepth) fail(line, "the template nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~Step() { --in.nesting_; }
    Interpreter& in;
  };

  void emit(const std::string& text, int line) {
    if (out_.size() + text.size() > kMaxTextBytes)
      fail(line, "the output would be past the limit of " + std::to_string(kMaxTextBytes) + " bytes");
    out_ += text;
  }

  void exec(const Node& n) {
    Step step(*this, n.line);
    switch (n.kind) {
      case Node::Kind::text: return emit(n.text, n.line);
      case Node::Kind::output: return emit(to_output(eval(*n.expr)), n.line);
      case Node::Kind::if_:
        for (const auto& [cond, body] : n.branches)
          if (!cond || truthy(eval(*cond))) return run(body);
        return;
      case Node::Kind::set: {
        Value v = eval(*n.expr);
        if (n.attr.empty()) {
          scopes_.back()[n.targets[0]] = std::move(v);
          return;
        }
        Value* ns = lookup(n.targets[0]);
        if (!ns || !ns->json.is_object()) fail(n.line, "'" + n.targets[0] + "' is not a namespace");
        ns->json[n.attr] = std::move(v.json);
        return;
      }
      case Node::Kind::for_: return loop(n);
      case Node::Kind::macro: macros_[n.targets[0]] = &n; return;
    }
  }

  void loop(const Node& n) {
    const Value seq = eval(*n.expr);
    Json items = Json::array();
    if (seq.json.is_array()) {
      items = seq.json;
    } else if (seq.json.is_object()) {
      for (auto it = seq.json.begin(); it != seq.json.end(); ++it) items.push_back(it.key());
    } else if (seq.json.is_string()) {
      for (char c : seq.json.get<std::string>()) items.push_back(std::string(1, c));
    } else if (!seq.undefined && !seq.json.is_null()) {
      fail(n.line, std::string("cannot loop over ") + type_name(seq));
    }
    check_items(items.size());
    auto bind = [&](const Json& item) {
      if (n.targets.size() == 1) {
        scopes_.back()[n.targets[0]] = Value{item};
        return;
      }
      if (!item.is_array() || item.size() != n.targets.size()) fail(n.line, "cannot unpack a loop item into " + std::to_string(n.targets.size()) + " names");
      for (size_t i = 0; i < n.targets.size(); ++i) scopes_.back()[n.targets[i]] = Value{item[i]};
    };
    if (n.filter) {  // `for x in xs if cond`: loop.* counts only the items kept
      Json kept = Json::array();
      for (const Json& item : items) {
        scopes_.emplace_back();
        bind(item);
        if (truthy(eval(*n.filter))) kept.push_back(item);
        scopes_.pop_back();
      }
      items = std::move(kept);
    }
    const long long count = static_cast<long long>(items.size());
    for (long long i = 0; i < count; ++i) {
      Step iteration(*this, n.line);
      scopes_.emplace_back();
      bind(items[i]);
      Json loop_info = {{"index0", i}, {"index", i + 1}, {"revindex0", count - 1 - i}, {"revindex", count - i},
                        {"first", i == 0}, {"last", i == count - 1}, {"length", count}};
      loop_info["previtem"] = i > 0 ? items[i - 1] : Json();
      loop_info["nextitem"] = i + 1 < count ? items[i + 1] : Json();
      scopes_.back()["loop"] = Value{loop_info};
      run(n.body);
      scopes_.pop_back();
    }
    if (count == 0) run(n.else_body);
  }

  // Runs a macro's body in a scope of its own, capturing its output as the call's value.
  Value call_macro(const Node& m, const Args& args, const Kwargs& kwargs, int line) {
    const size_t params = m.targets.size() - 1;
    if (args.size() > params) fail(line, "macro '" + m.targets[0] + "' takes " + std::to_string(params) + " arguments");
    if (++depth_ > 64) fail(line, "macros nest deeper than 64 calls");
    std::map<std::string, Value> scope;
    for (size_t i = 0; i < params; ++i) {
      const std::string& name = m.targets[i + 1];
      if (i < args.size()) scope[name] = args[i];
      else if (m.defaults[i]) scope[name] = eval(*m.defaults[i]);
      else scope[name] = Value::undef();
    }
    for (const auto& [k, v] : kwargs) {
      if (std::find(m.targets.begin() + 1, m.targets.end(), k) == m.targets.end())
        fail(line, "macro '" + m.targets[0] + "' has no parameter '" + k + "'");
      scope[k] = v;
    }
    std::string saved;
    saved.swap(out_);
    scopes_.push_back(std::move(scope));
    run(m.body);
    scopes_.pop_back();
    saved.swap(out_);
    --depth_;
    return Value{saved};
  }

  std::pair<Args, Kwargs> arguments(const Expr& e, size_t skip) {
    Args args;
    Kwargs kwargs;
    for (size_t i = skip; i < e.args.size(); ++i) args.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
    return {args, kwargs};
  }

  Value subscript(const Value& obj, const Value& key, int line) {
    const Json& j = obj.json;
    if (j.is_object()) {
      if (!key.json.is_string()) return Value::undef();
      auto it = j.find(key.json.get<std::string>());
      return it == j.end() ? Value::undef() : Value{*it};
    }
    if ((j.is_array() || j.is_string()) && key.json.is_number_integer()) {
      const long long size = static_cast<long long>(j.is_array() ? j.size() : j.get<std::string>().size());
      long long i = key.json.get<long long>();
      if (i < 0) i += size;
      if (i < 0 || i >= size) return Value::undef();
      return j.is_array() ? Value{j[static_cast<size_t>(i)]} : Value{std::string(1, j.get<std::string>()[static_cast<size_t>(i)])};
    }
    if (obj.undefined) return Value::undef();
    fail(line, std::string("cannot index ") + type_name(obj) + " with " + type_name(key));
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    auto bound = [&](size_t i, long long fallback) {
      if (!e.args[i]) return fallback;
      const Value v = eval(*e.args[i]);
      if (v.json.is_null()) return fallback;
      if (!v.json.is_number_integer()) fail(e.line, "slice bounds must be integers");
      return v.json.get<long long>();
    };
    const bool is_string = obj.json.is_string();
    if (!is_string && !obj.json.is_array()) fail(e.line, std::string("cannot slice ") + type_name(obj));
    const long long size = static_cast<long long>(is_string ? obj.json.get<std::string>().size() : obj.json.size());
    const long long step = bound(3, 1);
    if (step == 0) fail(e.line, "slice step cannot be zero");
    auto clamp = [&](long long i, bool is_start) {  // Python's slice.indices
      if (i < 0) i += size;
      if (step > 0) return std::clamp<long long>(i, 0, size);
      return std::clamp<long long>(i, -1, size - 1) + (is_start ? 0 : 0);
    };
    long long start = e.args[1] ? clamp(bound(1, 0), true) : (step > 0 ? 0 : size - 1);
    long long stop = e.args[2] ? clamp(bound(2, 0), false) : (step > 0 ? size : -1);
    Json list = Json::array();
    std::string text;
    // start and stop lie in [-1, size]; the index is wide so that adding a huge step cannot overflow.
    for (__int128 i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (is_string) text += obj.json.get<std::string>()[static_cast<size_t>(i)];
      else list.push_back(obj.json[static_cast<size_t>(i)]);
    }
    return is_string ? Value{text} : Value{list};
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value a = eval(*e.args[0]);
      return truthy(a) ? eval(*e.args[1]) : a;
    }
    if (op == "or") {
      Value a = eval(*e.args[0]);
      return truthy(a) ? a : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]), b = eval(*e.args[1]);
    if (op == "==") return Value{equal(a, b)};
    if (op == "!=") return Value{!equal(a, b)};
    if (op == "<") return Value{compare(a, b) < 0};
    if (op == ">") return Value{compare(a, b) > 0};
    if (op == "<=") return Value{compare(a, b) <= 0};
    if (op == ">=") return Value{compare(a, b) >= 0};
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.json.is_string() && a.json.is_string()) found = b.json.get<std::string>().find(a.json.get<std::string>()) != std::string::npos;
      else if (b.json.is_array()) found = std::any_of(b.json.begin(), b.json.end(), [&](const Json& x) { return equal(Value{x}, a); });
      else if (b.json.is_object()) found = a.json.is_string() && b.json.contains(a.json.get<std::string>());
      else if (!b.undefined) fail(e.line, std::string("'in' needs a string, list or dict on the right, got ") + type_name(b));
      return Value{op == "in" ? found : !found};
    }
    if (op == "~") return Value{to_output(a) + to_output(b)};  // eval() bounds the result's size
    if (a.undefined || b.undefined) fail(e.line, "'" + op + "' on an undefined value");
    if (op == "+" && a.json.is_string() && b.json.is_string()) {
      check_text_size(a.json.get_ref<const std::string&>().size() + b.json.get_ref<const std::string&>().size());
      return Value{a.json.get<std::string>() + b.json.get<std::string>()};
    }
    if (op == "+" && a.json.is_array() && b.json.is_array()) {
      check_items(a.json.size() + b.json.size());
      Json out = a.json;
      for (const Json& x : b.json) out.push_back(x);
      return Value{out};
    }
    if (!a.json.is_number() || !b.json.is_number())
      fail(e.line, std::string("unsupported operand types for ") + op + ": " + type_name(a) + " and " + type_name(b));
    const bool ints = a.json.is_number_integer() && b.json.is_number_integer();
    const double x = a.json.get<double>(), y = b.json.get<double>();
    if ((op == "/" || op == "//" || op == "%") && y == 0) fail(e.line, "division by zero");
    if (ints && op != "/") {
      const long long p = a.json.get<long long>(), q = b.json.get<long long>();
      long long r = 0;
      const bool overflow = op == "+" ? __builtin_add_overflow(p, q, &r)
                            : op == "-" ? __builtin_sub_overflow(p, q, &r)
                            : op == "*" ? __builtin_mul_overflow(p, q, &r)
                                        : p == LLONG_MIN && q == -1 && op == "//";
      if (overflow) fail(e.line, "integer overflow in " + std::to_string(p) + " " + op + " " + std::to_string(q));
      if (op == "+" || op == "-" || op == "*") return Value{r};
      if (q == -1) return Value{op == "//" ? -p : 0};  // LLONG_MIN % -1 would trap
      const long long rem = p % q, quot = p / q;         // floor division and Python's modulo (sign of q)
      const bool adjust = rem != 0 && ((rem < 0) != (q < 0));
      if (op == "//") return Value{adjust ? quot - 1 : quot};
      if (op == "%") return Value{adjust ? rem + q : rem};
    }
    if (op == "+") return Value{x + y};
    if (op == "-") return Value{x - y};
    if (op == "*") return Value{x * y};
    if (op == "/") return Value{x / y};
    if (op == "//") return Value{std::floor(x / y)};
    if (op == "%") return Value{x - y * std::floor(x / y)};
    fail(e.line, "unknown operator " + op);
  }

  Value eval(const Expr& e) {
    Step step(*this, e.line);
    try {
      Value v = eval_inner(e);
      if (v.json.is_string()) check_text_size(v.json.get_ref<const std::string&>().size());
      return v;
    } catch (const ChatTemplateError& err) {
      const std::string what = err.what();
      if (what.rfind("line ", 0) == 0) throw;
      fail(e.line, what);
    }
  }

  Value eval_inner(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: {
        Value* v = lookup(e.name);
        return v ? *v : Value::undef();
      }
      case Expr::Kind::list: {
        Json out = Json::array();
        for (const ExprPtr& x : e.args) out.push_back(eval(*x).json);
        return Value{out};
      }
      case Expr::Kind::dict: {
        Json out = Json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) out[to_output(eval(*e.args[i]))] = eval(*e.args[i + 1]).json;
        return Value{out};
      }
      case Expr::Kind::attr: return subscript(eval(*e.args[0]), Value{e.name}, e.line);
      case Expr::Kind::index: return subscript(eval(*e.args[0]), eval(*e.args[1]), e.line);
      case Expr::Kind::slice: return slice(e);
      case Expr::Kind::call: {
        const Expr& callee = *e.args[0];
        auto [args, kwargs] = arguments(e, 1);
        if (callee.kind == Expr::Kind::attr) {
          const Value object = eval(*callee.args[0]);
          if (has_method(object, callee.name)) return call_method(object, callee.name, args, kwargs);
          fail(e.line, std::string(type_name(object)) + " has no method '" + callee.name + "'");
        }
        if (callee.kind == Expr::Kind::name && !lookup(callee.name)) {
          auto macro = macros_.find(callee.name);
          if (macro != macros_.end()) return call_macro(*macro->second, args, kwargs, e.line);
          if (has_global(callee.name)) return call_global(callee.name, args, kwargs);
        }
        fail(e.line, "'" + (callee.kind == Expr::Kind::name ? callee.name : std::string("expression")) + "' is not callable");
      }
      case Expr::Kind::filter: {
        auto [args, kwargs] = arguments(e, 1);
        return apply_filter(e.name, eval(*e.args[0]), args, kwargs);
      }
      case Expr::Kind::test: {
        auto [args, kwargs] = arguments(e, 1);
        return Value{apply_test(e.name, eval(*e.args[0]), args) != e.negated};
      }
      case Expr::Kind::unary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value{!truthy(v)};
        if (v.json.is_number_integer()) {
          if (v.json.get<long long>() == LLONG_MIN) fail(e.line, "integer overflow in -(" + std::to_string(LLONG_MIN) + ")");
          return Value{-v.json.get<long long>()};
        }
        if (v.json.is_number()) return Value{-v.json.get<double>()};
        fail(e.line, std::string("bad operand for unary -: ") + type_name(v));
      }
      case Expr::Kind::binary: return binary(e);
      case Expr::Kind::conditional:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value::undef();
    }
    fail(e.line, "unknown expression");
  }

  std::vector<std::map<std::string, Value>> scopes_;
  std::map<std::string, const Node*> macros_;
  int depth_ = 0;           // macro calls in progress
  int nesting_ = 0;         // exec() and eval() calls in progress
  long long steps_ = 0;     // exec() and eval() calls so far
  std::string out_;
};

}  // namespace

Template::Template(const std::string& source) : body_(parse_template(source)) {}

std::string Template::render(const Json& variables) const {
  Interpreter interpreter(variables);
  interpreter.run(body_);
  return std::move(interpreter.output());
}

}  // namespace lattice::serve::jinja
