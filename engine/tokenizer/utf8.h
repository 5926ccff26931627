// UTF-8 helpers shared by the tokenizer pipeline: validation, code point iteration and the
// lossy decoding rule of Rust's String::from_utf8_lossy (one U+FFFD per maximal invalid subpart).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lattice::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence that starts at text[pos], or 0 when it is ill-formed.
// On 0, *invalid_length (if given) is how many bytes from_utf8_lossy replaces by one U+FFFD.
size_t utf8_sequence_length(std::string_view text, size_t pos, size_t* invalid_length = nullptr);

// Byte offset of the first ill-formed sequence, or nullopt when `text` is valid UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// Throws lattice::Error naming `what` and the offset of the first invalid byte.
void check_utf8(std::string_view text, std::string_view what);

// Length of the trailing bytes of `bytes` that start a well-formed sequence but stop before its
// end (0-3): what a stream must hold back until the next bytes arrive.
size_t incomplete_utf8_tail(std::string_view bytes);

// Rust String::from_utf8_lossy: every ill-formed subpart becomes one U+FFFD.
std::string lossy_utf8(std::string_view bytes);

// Decodes the code point at text[pos] (text must be valid UTF-8) and advances pos past it.
char32_t next_codepoint(std::string_view text, size_t& pos);

void append_codepoint(std::string& out, char32_t cp);

inline size_t utf8_lead_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

inline bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace lattice::tokenizer
