// Writes tensors to a .safetensors file (used to make random-weight checkpoints and test files).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace lattice {

// Tensors are written in the order given; every tensor must be on the CPU.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors);

}  // namespace lattice
