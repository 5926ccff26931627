#include "launcher/serve/jinja/builtins.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <ctime>

#include "launcher/serve/chat_template.h"
#include "launcher/serve/jinja/values.h"

namespace lattice::serve::jinja {

namespace {

[[noreturn]] void fail(const std::string& message) { throw ChatTemplateError(message); }

const Value* arg(const Args& args, const Kwargs& kwargs, size_t index, const char* key) {
  for (const auto& [k, v] : kwargs)
    if (k == key) return &v;
  return index < args.size() ? &args[index] : nullptr;
}

const std::string& str(const Value& v, const char* what) {
  if (!v.json.is_string()) fail(std::string(what) + " expects a string, got " + type_name(v));
  return v.json.get_ref<const std::string&>();
}

Json as_list(const Value& v, const char* what) {
  if (v.json.is_array()) return v.json;
  if (v.json.is_string()) {
    check_items(v.json.get_ref<const std::string&>().size());
    Json out = Json::array();
    for (char c : v.json.get<std::string>()) out.push_back(std::string(1, c));
    return out;
  }
  if (v.json.is_object()) {
    Json out = Json::array();
    for (auto it = v.json.begin(); it != v.json.end(); ++it) out.push_back(it.key());
    return out;
  }
  fail(std::string(what) + " expects a sequence, got " + type_name(v));
}

Json items(const Json& obj) {
  Json out = Json::array();
  for (auto it = obj.begin(); it != obj.end(); ++it) out.push_back(Json::array({it.key(), *it}));
  return out;
}

std::vector<std::string> split(const std::string& s, const Value* sep, long long maxsplit) {
  std::vector<std::string> out;
  if (!sep || sep->json.is_null()) {  // runs of whitespace, no empty parts
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && static_cast<long long>(out.size()) == maxsplit) {
        out.push_back(s.substr(i));
        return out;
      }
      size_t j = i;
      while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      out.push_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  const std::string& d = str(*sep, "split");
  if (d.empty()) fail("split: empty separator");
  size_t start = 0, at;
  while ((maxsplit < 0 || static_cast<long long>(out.size()) < maxsplit) && (at = s.find(d, start)) != std::string::npos) {
    out.push_back(s.substr(start, at - start));
    start = at + d.size();
  }
  out.push_back(s.substr(start));
  return out;
}

bool affix(const std::string& s, const Value& which, bool prefix) {
  auto one = [&](const std::string& a) {
    return a.size() <= s.size() && s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0;
  };
  if (which.json.is_array()) {
    for (const Json& a : which.json)
      if (a.is_string() && one(a.get<std::string>())) return true;
    return false;
  }
  return one(str(which, prefix ? "startswith" : "endswith"));
}

Value attribute_of(const Json& item, const std::string& path) {
  Value v{item};
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!v.json.is_object() || !v.json.contains(key)) return Value::undef();
    v = Value{v.json[key]};
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return v;
}

}  // namespace

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  const std::string set = chars && !chars->json.is_null() ? str(*chars, "strip") : std::string(" \t\n\r\f\v");
  size_t b = 0, e = s.size();
  if (left) while (b < e && set.find(s[b]) != std::string::npos) ++b;
  if (right) while (e > b && set.find(s[e - 1]) != std::string::npos) --e;
  return s.substr(b, e - b);
}

Value apply_filter(const std::string& name, const Value& in, const Args& args, const Kwargs& kwargs) {
  const Json& j = in.json;
  if (name == "length" || name == "count") {
    if (j.is_string()) return Value{static_cast<long long>(j.get<std::string>().size())};
    if (j.is_array() || j.is_object()) return Value{static_cast<long long>(j.size())};
    fail("length of " + std::string(type_name(in)));
  }
  if (name == "tojson") {
    const Value* indent = arg(args, kwargs, 0, "indent");
    const bool indented = indent && indent->json.is_number_integer();
    if (indented && (indent->json.get<long long>() < 0 || indent->json.get<long long>() > 64))
      fail("tojson: indent must be in [0, 64], got " + indent->json.dump());
    return Value{py_json_dumps(j, indented ? indent->json.get<int>() : -1)};
  }
  if (name == "trim") return Value{strip(str(in, "trim"), arg(args, kwargs, 0, "chars"), true, true)};
  if (name == "string") return Value{to_output(in)};
  if (name == "safe" || name == "e" || name == "escape") return in;
  if (name == "lower" || name == "upper") {
    std::string s = str(in, name.c_str());
    for (char& c : s) c = static_cast<char>(name == "lower" ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
    return Value{s};
  }
  if (name == "capitalize") return call_method(in, "capitalize", {}, {});
  if (name == "title") return call_method(in, "title", {}, {});
  if (name == "replace") return call_method(in, "replace", args, kwargs);
  if (name == "default" || name == "d") {
    const Value* fallback = arg(args, kwargs, 0, "default_value");
    const Value* boolean = arg(args, kwargs, 1, "boolean");
    const bool use = in.undefined || (boolean && truthy(*boolean) && !truthy(in));
    return use ? (fallback ? *fallback : Value{""}) : in;
  }
  if (name == "first" || name == "last") {
    const Json list = as_list(in, name.c_str());
    if (list.empty()) return Value::undef();
    return Value{name == "first" ? list.front() : list.back()};
  }
  if (name == "join") {
    const Value* sep = arg(args, kwargs, 0, "d");
    std::string out;
    bool first = true;
    for (const Json& x : as_list(in, "join")) {
      out += first ? "" : (sep ? str(*sep, "join") : "");
      first = false;
      out += to_output(Value{x});
      check_text_size(out.size());
    }
    return Value{out};
  }
  if (name == "items") {
    if (!j.is_object()) fail("items expects a dict, got " + std::string(type_name(in)));
    return Value{items(j)};
  }
  if (name == "list") return Value{as_list(in, "list")};
  if (name == "reverse") {
    if (j.is_string()) return Value{std::string(j.get<std::string>().rbegin(), j.get<std::string>().rend())};
    Json list = as_list(in, "reverse");
    std::reverse(list.begin(), list.end());
    return Value{list};
  }
  if (name == "int") {
    if (j.is_number_integer()) return in;
    if (j.is_number()) {
      const double d = j.get<double>();  // Python's int() truncates; it has no integer for inf or nan
      if (!(std::fabs(d) < 9.2e18)) fail("int: " + j.dump() + " has no 64-bit integer value");
      return Value{static_cast<long long>(d)};
    }
    if (j.is_string()) try { return Value{std::stoll(j.get<std::string>())}; } catch (...) {}
    return Value{0};
  }
  if (name == "float") {
    if (j.is_number()) return Value{j.get<double>()};
    if (j.is_string()) try { return Value{std::stod(j.get<std::string>())}; } catch (...) {}
    return Value{0.0};
  }
  if (name == "abs") {
    if (j.is_number_integer()) {
      if (j.get<long long>() == LLONG_MIN) fail("abs: integer overflow");
      return Value{std::llabs(j.get<long long>())};
    }
    if (j.is_number()) return Value{std::fabs(j.get<double>())};
    fail("abs of " + std::string(type_name(in)));
  }
  if (name == "selectattr" || name == "rejectattr") {
    if (args.empty()) fail(name + " needs an attribute name");
    const std::string& attr = str(args[0], name.c_str());
    Json out = Json::array();
    for (const Json& x : as_list(in, name.c_str())) {
      const Value v = attribute_of(x, attr);
      const bool ok = args.size() > 1 ? apply_test(str(args[1], name.c_str()), v, Args(args.begin() + 2, args.end())) : truthy(v);
      if (ok == (name == "selectattr")) out.push_back(x);
    }
    return Value{out};
  }
  if (name == "map") {
    const Value* attr = arg({}, kwargs, 0, "attribute");
    Json out = Json::array();
    for (const Json& x : as_list(in, "map")) {
      if (attr) out.push_back(attribute_of(x, str(*attr, "map")).json);
      else if (!args.empty()) out.push_back(apply_filter(str(args[0], "map"), Value{x}, Args(args.begin() + 1, args.end()), {}).json);
      else fail("map needs a filter name or attribute=");
    }
    return Value{out};
  }
  fail("unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& v, const Args& args) {
  const Json& j = v.json;
  if (name == "defined") return !v.undefined;
  if (name == "undefined") return v.undefined;
  if (v.undefined && name != "none") return false;
  if (name == "none") return !v.undefined && j.is_null();
  if (name == "string") return j.is_string();
  if (name == "number") return j.is_number();
  if (name == "integer") return j.is_number_integer();
  if (name == "float") return j.is_number_float();
  if (name == "boolean") return j.is_boolean();
  if (name == "true") return j.is_boolean() && j.get<bool>();
  if (name == "false") return j.is_boolean() && !j.get<bool>();
  if (name == "mapping") return j.is_object();
  if (name == "sequence" || name == "iterable") return j.is_array() || j.is_string() || j.is_object();
  if (name == "odd" || name == "even") return j.is_number_integer() && (j.get<long long>() % 2 != 0) == (name == "odd");
  if (name == "eq" || name == "equalto" || name == "==" || name == "sameas") return !args.empty() && equal(v, args[0]);
  if (name == "ne" || name == "!=") return args.empty() || !equal(v, args[0]);
  fail("unknown test '" + name + "'");
}

bool has_method(const Value& o, const std::string& name) {
  static const std::vector<std::string> string_methods = {"startswith", "endswith", "split", "rsplit", "strip", "lstrip",
      "rstrip", "upper", "lower", "title", "capitalize", "replace", "find", "join", "count"};
  static const std::vector<std::string> dict_methods = {"items", "keys", "values", "get"};
  const auto& list = o.json.is_string() ? string_methods : o.json.is_object() ? dict_methods : std::vector<std::string>{};
  return !o.undefined && std::find(list.begin(), list.end(), name) != list.end();
}

Value call_method(const Value& o, const std::string& name, const Args& args, const Kwargs& kwargs) {
  const Json& j = o.json;
  if (j.is_object()) {
    if (name == "items") return Value{items(j)};
    Json out = Json::array();
    if (name == "keys" || name == "values") {
      for (auto it = j.begin(); it != j.end(); ++it) out.push_back(name == "keys" ? Json(it.key()) : *it);
      return Value{out};
    }
    if (args.empty()) fail("get() needs a key");
    const std::string& key = str(args[0], "get");
    if (j.contains(key)) return Value{j[key]};
    return args.size() > 1 ? args[1] : Value{nullptr};
  }
  const std::string& s = str(o, name.c_str());
  auto need = [&](size_t n) {
    if (args.size() < n) fail(name + "() needs " + std::to_string(n) + " argument(s)");
  };
  if (name == "startswith" || name == "endswith") return need(1), Value{affix(s, args[0], name == "startswith")};
  if (name == "split" || name == "rsplit") {
    const Value* max = arg(args, kwargs, 1, "maxsplit");
    if (max && !max->json.is_number_integer()) fail(name + ": maxsplit must be an integer, got " + type_name(*max));
    Json out = Json::array();
    for (const std::string& part : split(s, arg(args, kwargs, 0, "sep"), max ? max->json.get<long long>() : -1)) out.push_back(part);
    return Value{out};
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value{strip(s, arg(args, kwargs, 0, "chars"), name != "rstrip", name != "lstrip")};
  if (name == "upper" || name == "lower") return apply_filter(name, o, {}, {});
  if (name == "capitalize" || name == "title") {
    std::string out = s;
    bool start = true;
    for (size_t i = 0; i < out.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(out[i]);
      out[i] = static_cast<char>(start ? std::toupper(c) : std::tolower(c));
      start = name == "title" ? !std::isalpha(c) : false;
    }
    return Value{out};
  }
  if (name == "replace") {
    need(2);
    const std::string& from = str(args[0], "replace");
    const std::string& to = str(args[1], "replace");
    std::string out;
    size_t start = 0, at;
    if (from.empty()) return Value{s};
    while ((at = s.find(from, start)) != std::string::npos) {
      out += s.substr(start, at - start) + to;
      start = at + from.size();
      check_text_size(out.size());
    }
    return Value{out + s.substr(start)};
  }
  if (name == "find") return need(1), Value{static_cast<long long>(s.find(str(args[0], "find")) == std::string::npos ? -1 : static_cast<long long>(s.find(str(args[0], "find"))))};
  if (name == "count") {
    need(1);
    const std::string& sub = str(args[0], "count");
    long long n = 0;
    for (size_t at = s.find(sub); !sub.empty() && at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
    return Value{n};
  }
  if (name == "join") return need(1), apply_filter("join", args[0], {o}, {});
  fail("unknown method '" + name + "'");
}

bool has_global(const std::string& name) {
  return name == "namespace" || name == "range" || name == "raise_exception" || name == "dict" || name == "strftime_now";
}

Value call_global(const std::string& name, const Args& args, const Kwargs& kwargs) {
  if (name == "namespace" || name == "dict") {
    Json out = Json::object();
    for (const auto& [k, v] : kwargs) out[k] = v.json;
    return Value{out};
  }
  if (name == "raise_exception") throw ChatTemplateError(args.empty() ? "raise_exception()" : to_output(args[0]));
  if (name == "strftime_now") {
    const std::time_t now = std::time(nullptr);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof buf, args.empty() ? "%d %B %Y" : str(args[0], "strftime_now").c_str(),
                                   std::localtime(&now));
    return Value{std::string(buf, n)};  // n is 0 when the text does not fit, and buf then undefined
  }
  // range(stop) / range(start, stop[, step])
  long long start = 0, stop = 0, step = 1;
  auto integer = [&](size_t i) {
    if (!args[i].json.is_number_integer()) fail("range expects integers");
    return args[i].json.get<long long>();
  };
  if (args.size() == 1) stop = integer(0);
  else if (args.size() >= 2) start = integer(0), stop = integer(1), step = args.size() > 2 ? integer(2) : 1;
  if (step == 0) fail("range step must not be 0");
  const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  const __int128 count = span <= 0 ? 0 : (span - 1) / (step > 0 ? static_cast<__int128>(step) : -static_cast<__int128>(step)) + 1;
  check_items(static_cast<size_t>(std::min<__int128>(count, kMaxItems + 1)));
  Json out = Json::array();
  for (__int128 i = 0; i < count; ++i) out.push_back(static_cast<long long>(start + i * step));
  return Value{out};
}

}  // namespace lattice::serve::jinja
