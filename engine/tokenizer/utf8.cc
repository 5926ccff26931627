#include "engine/tokenizer/utf8.h"

#include "engine/core/error.h"

namespace lattice::tokenizer {

size_t utf8_sequence_length(std::string_view text, size_t pos, size_t* invalid_length) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const size_t available = text.size() - pos;
  const unsigned char lead = byte(0);
  size_t bad = 1;
  auto fail = [&]() -> size_t {
    if (invalid_length) *invalid_length = bad;
    return 0;
  };
  if (lead < 0x80) return 1;
  size_t width = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    width = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    width = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    width = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return fail();
  }
  if (available < 2 || byte(1) < lo || byte(1) > hi) return fail();
  for (size_t i = 2; i < width; ++i) {
    bad = i;
    if (available <= i || (byte(i) & 0xC0) != 0x80) return fail();
  }
  return width;
}

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t length = utf8_sequence_length(text, pos);
    if (length == 0) return pos;
    pos += length;
  }
  return std::nullopt;
}

void check_utf8(std::string_view text, std::string_view what) {
  if (const auto bad = find_invalid_utf8(text)) {
    LATTICE_THROW(what, " is not valid UTF-8: invalid byte 0x", std::hex,
                  static_cast<int>(static_cast<unsigned char>(text[*bad])), std::dec, " at byte offset ", *bad);
  }
}

size_t incomplete_utf8_tail(std::string_view bytes) {
  for (size_t length = 1; length <= 3 && length <= bytes.size(); ++length) {
    const size_t start = bytes.size() - length;
    const auto byte = static_cast<unsigned char>(bytes[start]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: look further back for the lead
    size_t bad = 0;
    // Incomplete (not ill-formed) exactly when every available byte was acceptable.
    return utf8_sequence_length(bytes, start, &bad) == 0 && bad == length && utf8_lead_length(byte) > length ? length : 0;
  }
  return 0;
}

std::string lossy_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t bad = 0;
    const size_t length = utf8_sequence_length(bytes, pos, &bad);
    if (length > 0) {
      out.append(bytes.substr(pos, length));
      pos += length;
    } else {
      out.append(kReplacementChar);
      pos += bad;
    }
  }
  return out;
}

char32_t next_codepoint(std::string_view text, size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t length = utf8_lead_length(lead);
  char32_t cp = length == 1 ? lead : length == 2 ? (lead & 0x1F) : length == 3 ? (lead & 0x0F) : (lead & 0x07);
  for (size_t i = 1; i < length; ++i) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  pos += length;
  return cp;
}

void append_codepoint(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace lattice::tokenizer
