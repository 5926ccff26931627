// lattice: the command-line entry point. The only place that ends the process on an error.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "launcher/blas_env.h"
#include "launcher/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const lattice::launcher::Args&);
  const char* help;
};

const Command kCommands[] = {
    {"generate", lattice::launcher::generate_command, "generate tokens for prompts or a requests file"},
    {"bench", lattice::launcher::bench_command, "measure prefill/decode speed against the machine's ceilings"},
    {"make-model", lattice::launcher::make_model_command, "write a deterministic random-weight Llama checkpoint"},
    {"tokenize", lattice::launcher::tokenize_command, "encode text with a model's tokenizer.json"},
    {"detokenize", lattice::launcher::detokenize_command, "decode token ids with a model's tokenizer.json"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: lattice <command> [flags]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.help);
  std::fprintf(out, "\nRun 'lattice <command> --help' for a command's flags.\n");
}

}  // namespace

int main(int argc, char** argv) {
  lattice::launcher::select_blas_kernels(argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(lattice::launcher::Args(argv + 2, argv + argc));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lattice %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "lattice: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
