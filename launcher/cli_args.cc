#include "launcher/cli_args.h"

#include <charconv>

#include "engine/core/error.h"

namespace lattice::launcher {

CliArgs::CliArgs(const std::vector<std::string>& argv, const std::set<std::string>& switches) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    LATTICE_CHECK(arg.rfind("--", 0) == 0 && arg.size() > 2, "unexpected argument '", arg, "' (flags start with --)");
    std::string name = arg.substr(2);
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (switches.count(name)) {
      value = "1";
    } else {
      LATTICE_CHECK(i + 1 < argv.size(), "flag --", name, " needs a value");
      value = argv[++i];
    }
    values_[name] = value;
  }
}

bool CliArgs::has(const std::string& name) const {
  read_.insert(name);
  return values_.count(name) > 0;
}

std::optional<std::string> CliArgs::maybe(const std::string& name) const {
  read_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string CliArgs::get(const std::string& name, const std::string& fallback) const {
  return maybe(name).value_or(fallback);
}

std::string CliArgs::require(const std::string& name) const {
  auto value = maybe(name);
  LATTICE_CHECK(value.has_value(), "missing required flag --", name);
  return *value;
}

int64_t CliArgs::get_int(const std::string& name, int64_t fallback) const {
  auto value = maybe(name);
  if (!value) return fallback;
  int64_t out = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), out);
  LATTICE_CHECK(ec == std::errc() && end == value->data() + value->size(), "--", name,
                " expects an integer, got '", *value, "'");
  return out;
}

double CliArgs::get_double(const std::string& name, double fallback) const {
  auto value = maybe(name);
  if (!value) return fallback;
  size_t used = 0;
  double out = 0;
  try {
    out = std::stod(*value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  LATTICE_CHECK(used == value->size() && !value->empty(), "--", name, " expects a number, got '", *value, "'");
  return out;
}

void CliArgs::reject_unknown() const {
  std::string unknown;
  for (const auto& [name, value] : values_)
    if (!read_.count(name)) unknown += (unknown.empty() ? "--" : ", --") + name;
  LATTICE_CHECK(unknown.empty(), "unknown flag(s): ", unknown);
}

std::vector<int32_t> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    int32_t value = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    LATTICE_CHECK(!item.empty() && ec == std::errc() && end == item.data() + item.size(), flag,
                  " expects comma-separated integers, got '", text, "'");
    out.push_back(value);
    start = comma + 1;
  }
  return out;
}

}  // namespace lattice::launcher
