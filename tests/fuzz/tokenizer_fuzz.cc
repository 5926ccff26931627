// Fuzz target: the tokenizer.json loader. The input is tokenizer.json, optionally followed by a NUL byte and
// tokenizer_config.json. Loading either throws lattice::Error or gives a tokenizer that encodes a few texts
// into ids of its vocabulary and decodes them (and every id) without throwing anything else.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_contract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view tokenizer_json = input.substr(0, nul);
  const std::string_view config_json = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  lattice::fuzz::expect_only<lattice::Error>([&] {
    const lattice::Tokenizer tok = lattice::Tokenizer::from_json(tokenizer_json, config_json);
    for (const char* text : {"Hello world", " a  b\n\tc", "héllo 世界 👋", "<s>[INST] hi [/INST]</s>", ""}) {
      const std::vector<int32_t> ids = tok.encode(text, true);
      for (int32_t id : ids) FUZZ_ASSERT(id >= 0 && id < tok.vocab_size());
      tok.decode(ids);
    }
    for (int32_t id = 0; id < std::min<int32_t>(tok.vocab_size(), 64); ++id)
      if (tok.has_token(id)) tok.decode(std::vector<int32_t>{id});
  });
  return 0;
}
