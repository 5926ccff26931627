// Fuzz target: config.json parsing. A parse either throws lattice::Error or returns a config whose sizes are
// positive and 32-bit, whose heads divide, whose token ids are in the vocabulary, and from which the weight
// table and the rotary frequencies (finite, positive) can be built.
#include <cmath>
#include <cstdint>
#include <string>

#include "models/model_config.h"
#include "models/weight_table.h"
#include "tests/fuzz/fuzz_contract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  lattice::fuzz::expect_only<lattice::Error>([&] {
    const lattice::ModelConfig c = lattice::ModelConfig::from_json_text(text, "config.json");
    for (int64_t v : {c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers, c.num_heads, c.num_kv_heads,
                      c.head_dim, c.max_position_embeddings})
      FUZZ_ASSERT(v > 0 && v <= INT32_MAX);
    FUZZ_ASSERT(c.num_heads % c.num_kv_heads == 0 && c.head_dim % 2 == 0 && c.sliding_window >= 0);
    for (int32_t id : c.eos_token_ids) FUZZ_ASSERT(id >= 0 && id < c.vocab_size);
    FUZZ_ASSERT(c.bos_token_id >= -1 && c.bos_token_id < c.vocab_size);
    FUZZ_ASSERT(!lattice::llama_weight_table(c).empty());
    if (c.head_dim <= 4096)  // the frequencies of a huge head_dim are only slow to build, not wrong
      for (float f : c.rope_inv_freq()) FUZZ_ASSERT(std::isfinite(f) && f >= 0);
  });
  return 0;
}
