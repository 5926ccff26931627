#include "engine/tokenizer/byte_level.h"

#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  char_to_byte_.fill(-1);
  char32_t next_extra = 256;
  for (int byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
    const char32_t cp = printable ? static_cast<char32_t>(byte) : next_extra++;
    append_codepoint(byte_to_text_[byte], cp);
    char_to_byte_[cp] = static_cast<int16_t>(byte);
  }
}

std::string ByteLevelAlphabet::encode(std::string_view text) const {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  for (const char c : text) out += byte_to_text_[static_cast<unsigned char>(c)];
  return out;
}

}  // namespace lattice::tokenizer
