// One error type and the CHECK macros every Lattice module uses.
// Library code throws lattice::Error; only the launcher's top level ends the process.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lattice {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds "file:line: message" and throws lattice::Error.
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
// The caller's message, or "check failed: <condition>" when it gave none.
inline std::string check_message(const char* condition, const std::string& message = {}) {
  return message.empty() ? std::string("check failed: ") + condition : message;
}
}  // namespace detail

}  // namespace lattice

// LATTICE_THROW("k has ", n, " heads") always throws.
#define LATTICE_THROW(...) ::lattice::throw_error(__FILE__, __LINE__, ::lattice::detail::concat(__VA_ARGS__))

// LATTICE_CHECK(cond, "message parts"...) throws the message when cond is false (the condition text
// when no message is given).
#define LATTICE_CHECK(cond, ...)                                                                    \
  do {                                                                                              \
    if (!(cond)) [[unlikely]]                                                                       \
      ::lattice::throw_error(__FILE__, __LINE__,                                                    \
                             ::lattice::detail::check_message(#cond __VA_OPT__(, ::lattice::detail::concat(__VA_ARGS__)))); \
  } while (0)
