// Fuzz target: the safetensors header parser on whole files (8-byte length, JSON header, data). A parse either
// throws lattice::Error or returns tensors whose byte ranges lie in the file, match dtype x shape and do not
// overlap.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/weights/safetensors.h"
#include "tests/fuzz/fuzz_contract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lattice::fuzz::expect_only<lattice::Error>([&] {
    const auto tensors = lattice::parse_safetensors_header(data, size, "fuzz.safetensors");
    std::vector<std::pair<size_t, size_t>> ranges;
    for (const auto& [name, info] : tensors) {
      FUZZ_ASSERT(info.begin <= info.end && info.end <= size);
      uint64_t numel = 1;
      for (int64_t d : info.shape) {
        FUZZ_ASSERT(d >= 0);
        numel *= static_cast<uint64_t>(d);
      }
      FUZZ_ASSERT(info.end - info.begin == numel * lattice::dtype_size(info.dtype));
      ranges.emplace_back(info.begin, info.end);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i) FUZZ_ASSERT(ranges[i].first >= ranges[i - 1].second);
  });
  return 0;
}
