// The lattice sub-commands. Each takes the arguments after its name and returns the exit code;
// errors are thrown as lattice::Error and reported by main.
#pragma once

#include <string>
#include <vector>

namespace lattice::launcher {

using Args = std::vector<std::string>;

int generate_command(const Args& args);
int bench_command(const Args& args);
int make_model_command(const Args& args);
int tokenize_command(const Args& args);
int detokenize_command(const Args& args);

}  // namespace lattice::launcher
