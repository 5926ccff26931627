#include "launcher/serve/jinja/values.h"

#include <cmath>
#include <cstdio>

#include "launcher/serve/chat_template.h"

namespace lattice::serve::jinja {

bool truthy(const Value& v) {
  if (v.undefined) return false;
  const Json& j = v.json;
  if (j.is_null()) return false;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<long long>() != 0;
  if (j.is_number()) return j.get<double>() != 0;
  if (j.is_string()) return !j.get_ref<const std::string&>().empty();
  return !j.empty();
}

namespace {

std::string float_repr(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (std::isnan(d)) return "nan";
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {  // the shortest text that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string quote_python(const std::string& s) {
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == q) out += std::string("\\") + q;
    else out += c;
  }
  return out + q;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string python_repr(const Json& j) {
  if (j.is_null()) return "None";
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_number_integer()) return std::to_string(j.get<long long>());
  if (j.is_number()) return float_repr(j.get<double>());
  if (j.is_string()) return quote_python(j.get<std::string>());
  std::string out = j.is_array() ? "[" : "{";
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += first ? "" : ", ";
    first = false;
    if (j.is_object()) out += quote_python(it.key()) + ": ";
    out += python_repr(*it);
  }
  return out + (j.is_array() ? "]" : "}");
}

std::string to_output(const Value& v) {
  if (v.undefined) return "";
  if (v.json.is_string()) return v.json.get<std::string>();
  return python_repr(v.json);
}

std::string py_json_dumps(const Json& j, int indent, int depth) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_number_integer()) return std::to_string(j.get<long long>());
  if (j.is_number()) return float_repr(j.get<double>());
  if (j.is_string()) return json_string(j.get<std::string>());
  const bool array = j.is_array();
  if (j.empty()) return array ? "[]" : "{}";
  std::string pad;
  if (indent >= 0) pad.append(1, '\n').append(static_cast<size_t>(indent * (depth + 1)), ' ');
  std::string out = array ? "[" : "{";
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!first) out.append(indent >= 0 ? "," : ", ");
    out.append(pad);
    first = false;
    if (!array) out += json_string(it.key()) + ": ";
    out += py_json_dumps(*it, indent, depth + 1);
  }
  if (indent >= 0) out.append(1, '\n').append(static_cast<size_t>(indent * depth), ' ');
  return out + (array ? "]" : "}");
}

bool equal(const Value& a, const Value& b) {
  if (a.undefined || b.undefined) return a.undefined && b.undefined;
  if (a.json.is_number() && b.json.is_number()) return a.json.get<double>() == b.json.get<double>();
  return a.json == b.json;
}

int compare(const Value& a, const Value& b) {
  if (a.json.is_number() && b.json.is_number()) {
    const double x = a.json.get<double>(), y = b.json.get<double>();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.json.is_string() && b.json.is_string()) {
    const int c = a.json.get<std::string>().compare(b.json.get<std::string>());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  throw ChatTemplateError(std::string("cannot order ") + type_name(a) + " and " + type_name(b));
}

void check_text_size(size_t n) {
  if (n > kMaxTextBytes)
    throw ChatTemplateError("a string of " + std::to_string(n) + " bytes is past the limit of " + std::to_string(kMaxTextBytes));
}

void check_items(size_t n) {
  if (n > kMaxItems)
    throw ChatTemplateError("a list of " + std::to_string(n) + " items is past the limit of " + std::to_string(kMaxItems));
}

const char* type_name(const Value& v) {
  if (v.undefined) return "undefined";
  switch (v.json.type()) {
    case Json::value_t::null: return "none";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "int";
    case Json::value_t::number_float: return "float";
    case Json::value_t::string: return "string";
    case Json::value_t::array: return "list";
    case Json::value_t::object: return "dict";
    default: return "value";
  }
}

}  // namespace lattice::serve::jinja
