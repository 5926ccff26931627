// Minimal "--flag value" / "--switch" command-line parsing shared by every lattice sub-command.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lattice::launcher {

class CliArgs {
 public:
  // argv excludes the program and sub-command names. `switches` are flags that take no value.
  CliArgs(const std::vector<std::string>& argv, const std::set<std::string>& switches);

  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  std::optional<std::string> maybe(const std::string& name) const;

  // Throws naming every flag that was given but never read (catches typos such as --max-token).
  void reject_unknown() const;

 private:
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> read_;
};

// "1,2,3" -> {1,2,3}; throws on anything that is not a comma-separated integer list.
std::vector<int32_t> parse_int_list(const std::string& text, const std::string& flag);

}  // namespace lattice::launcher
