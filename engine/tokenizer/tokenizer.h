// Public tokenizer API: Hugging Face tokenizer.json tokenizers (BPE families: GPT-2, Llama-3,
// Qwen2/3, Mistral/Llama-2/TinyLlama) and a streaming detokenizer for generation.
//
//   auto tokenizer = lattice::Tokenizer::from_dir("models/qwen3");
//   std::vector<int32_t> ids = tokenizer.encode("Hello", /*add_special_tokens=*/true);
//   lattice::IncrementalDetokenizer stream(tokenizer);
//   for (int32_t id : generated) std::cout << stream.push(id);
//   std::cout << stream.flush();
//
// All errors are lattice::Error. A Tokenizer is immutable after loading and safe to use from
// several threads at once; copies share the loaded data.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lattice {

namespace tokenizer {
struct TokenizerImpl;
}

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (bos/eos, add_bos_token).
  static Tokenizer from_dir(const std::string& model_dir);
  // The same from file contents; `tokenizer_config_json` may be empty.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json = {});

  // `text` must be valid UTF-8. Added tokens in the text (special or not) become their ids;
  // add_special_tokens runs the post-processor (e.g. prepends <s>).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;

  // Throws on ids outside [0, vocab_size()) or without a token. The result is valid UTF-8.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const {
    return decode(std::span<const int32_t>(ids), skip_special_tokens);
  }

  // One past the largest id of the model vocab and the added tokens.
  int32_t vocab_size() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string of `id` as stored in tokenizer.json (e.g. "Ġworld", "<0x0A>").
  const std::string& id_to_token(int32_t id) const;
  // True for the ids decode() accepts: in [0, vocab_size()) and with a token. A model's vocabulary is often
  // padded past its tokenizer's; HF decodes such ids to nothing, callers that do the same check here.
  bool has_token(int32_t id) const;
  bool is_special(int32_t id) const;

 private:
  friend class IncrementalDetokenizer;
  explicit Tokenizer(std::shared_ptr<const tokenizer::TokenizerImpl> impl);
  std::shared_ptr<const tokenizer::TokenizerImpl> impl_;
};

// Turns a stream of generated ids into text as it arrives. push() returns all text that is
// complete so far (possibly ""): bytes of a character split across byte tokens are held until
// its last byte arrives, never emitted as half a UTF-8 sequence or as a provisional U+FFFD.
// The concatenation of every push() and the final flush() equals tokenizer.decode(all ids) for
// any id sequence whose byte runs are well-formed UTF-8. Keeps a (cheap, shared) copy of the
// Tokenizer, so it may outlive the one it was made from and can be moved and assigned, e.g. one
// per request in a container. Decoding is windowed (the ids since the last character boundary
// plus the group before it as context), so each push costs O(1) in the length of the stream.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  std::string push(int32_t id);
  // Returns what is still held back and resets the stream. An incomplete character at the end
  // comes out as U+FFFD, exactly as decode() renders it.
  std::string flush();

 private:
  Tokenizer tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> window_;  // ids since the previous character boundary, plus context
  std::string emitted_;          // the part of decode(window_) already returned
  size_t context_ = 0;           // leading ids of window_ that only serve as context
};

}  // namespace lattice
