// GPT-2's reversible byte <-> printable-character alphabet used by ByteLevel pre-tokenizers and
// decoders: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 and up.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lattice::tokenizer {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();

  // UTF-8 of the character that stands for `byte`.
  const std::string& encode_byte(unsigned char byte) const { return byte_to_text_[byte]; }

  // Maps every byte of `text` to its alphabet character.
  std::string encode(std::string_view text) const;
  // The same, appended to `out`.
  void encode_into(std::string_view text, std::string& out) const;

  // The byte a code point stands for, or -1 when it is not in the alphabet.
  int decode_char(char32_t cp) const { return cp < char_to_byte_.size() ? char_to_byte_[cp] : -1; }

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> byte_to_text_;
  std::array<char, 512> byte_to_pair_;  // the 1-2 UTF-8 bytes of each character, flat
  std::array<uint8_t, 256> byte_to_length_;
  std::array<int16_t, 324> char_to_byte_;
};

}  // namespace lattice::tokenizer
