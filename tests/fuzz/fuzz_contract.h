// What every fuzz target checks beyond "no crash": the parser under test either returns or throws its own
// documented error type; anything else that escapes (a std::out_of_range, an nlohmann type_error) is a bug,
// reported by aborting so the driver or libFuzzer keeps the input. Invariants a successful parse promises are
// checked with FUZZ_ASSERT, which aborts too.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "engine/core/error.h"

namespace lattice::fuzz {

[[noreturn]] inline void fail(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz target: %s: %s\n", what, detail);
  std::abort();
}

// Runs `body`; returns normally when it returns or throws `Allowed` (or one of `More`).
template <typename Allowed, typename... More, typename Body>
void expect_only(Body&& body) {
  try {
    body();
  } catch (const Allowed&) {
  } catch (const std::exception& e) {
    if ((... || (dynamic_cast<const More*>(&e) != nullptr))) return;
    fail(typeid(e).name(), e.what());
  }
}

}  // namespace lattice::fuzz

#define FUZZ_ASSERT(cond) \
  do {                    \
    if (!(cond)) ::lattice::fuzz::fail("invariant broken", #cond); \
  } while (0)
