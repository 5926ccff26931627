#include "engine/core/error.h"

#include <cstring>

namespace lattice {

[[noreturn]] void throw_error(const char* file, int line, const std::string& message) {
  const char* base = std::strrchr(file, '/');
  throw Error(std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " + message);
}

}  // namespace lattice
