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
    byte_to_length_[byte] = static_cast<uint8_t>(byte_to_text_[byte].size());
    byte_to_pair_[2 * byte] = byte_to_text_[byte][0];
    byte_to_pair_[2 * byte + 1] = byte_to_text_[byte].size() > 1 ? byte_to_text_[byte][1] : '\0';
    char_to_byte_[cp] = static_cast<int16_t>(byte);
  }
}

std::string ByteLevelAlphabet::encode(std::string_view text) const {
  std::string out;
  encode_into(text, out);
  return out;
}

void ByteLevelAlphabet::encode_into(std::string_view text, std::string& out) const {
  const size_t start = out.size();
  out.resize(start + 2 * text.size());
  char* write = out.data() + start;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    write[0] = byte_to_pair_[2 * byte];
    write[1] = byte_to_pair_[2 * byte + 1];
    write += byte_to_length_[byte];
  }
  out.resize(static_cast<size_t>(write - out.data()));
}

}  // namespace lattice::tokenizer
