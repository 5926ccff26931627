#include "engine/tokenizer/normalizers.h"

#include <utf8proc.h>

#include <cstdlib>

#include "engine/core/error.h"
#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {
namespace {

bool is_ascii(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Characters that NFC leaves alone and that never combine with the character before them
// (starters that are not the second half of any composition): text can be normalized
// independently on either side of one. Latin-1, kana, CJK ideographs and Hangul syllables.
bool is_nfc_boundary_char(char32_t cp) {
  return cp < 0x300 || (cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x30A1 && cp <= 0x30FA) ||
         (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3);
}

}  // namespace

std::string UnicodeNormalizer::normalize_run(std::string_view text) const {
  int options = UTF8PROC_STABLE;
  switch (form_) {
    case UnicodeForm::kNfc: options |= UTF8PROC_COMPOSE; break;
    case UnicodeForm::kNfd: options |= UTF8PROC_DECOMPOSE; break;
    case UnicodeForm::kNfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case UnicodeForm::kNfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &result, static_cast<utf8proc_option_t>(options));
  if (length < 0) LATTICE_THROW("Unicode normalization failed: ", utf8proc_errmsg(length));
  std::string out(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
  std::free(result);
  return out;
}

void UnicodeNormalizer::normalize(std::string& text) const {
  // ASCII text is invariant under all four forms; skipping it keeps English input fast.
  if (is_ascii(text)) return;
  if (form_ != UnicodeForm::kNfc) {
    text = normalize_run(text);
    return;
  }
  // NFC: only runs of other characters, together with the boundary character before them (it
  // may compose with a following mark), go through utf8proc; the rest is copied.
  std::string out;
  size_t flushed = 0;  // text[0, flushed) is accounted for in `out`
  size_t previous_begin = std::string::npos;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t begin = pos;
    if (is_nfc_boundary_char(next_codepoint(text, pos))) {
      previous_begin = begin;
      continue;
    }
    const size_t run_begin = previous_begin != std::string::npos && previous_begin >= flushed ? previous_begin : begin;
    size_t run_end = pos;
    while (run_end < text.size()) {
      size_t next = run_end;
      if (is_nfc_boundary_char(next_codepoint(text, next))) break;
      run_end = next;
    }
    if (out.empty()) out.reserve(text.size() + 16);
    out.append(text, flushed, run_begin - flushed);
    out += normalize_run(std::string_view(text).substr(run_begin, run_end - run_begin));
    flushed = pos = run_end;
    previous_begin = std::string::npos;
  }
  if (flushed == 0) return;  // nothing needed utf8proc
  out.append(text, flushed, std::string::npos);
  text = std::move(out);
}

void LowercaseNormalizer::normalize(std::string& text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t cp = next_codepoint(text, pos);
    append_codepoint(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
  }
  text = std::move(out);
}

void PrependNormalizer::normalize(std::string& text) const {
  if (!text.empty()) text.insert(0, prefix_);
}

Pattern Pattern::literal(std::string text) {
  LATTICE_CHECK(!text.empty(), "an empty string pattern would match everywhere");
  Pattern pattern;
  pattern.literal_ = std::move(text);
  return pattern;
}

Pattern Pattern::regex(std::string_view pattern) {
  Pattern result;
  result.regex_.emplace(pattern);
  return result;
}

void Pattern::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const {
  if (regex_) {
    regex_->find_all(text, matches);
    return;
  }
  size_t pos = 0;
  while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
    matches.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::vector<std::pair<size_t, size_t>> matches;
  find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t last = 0;
  for (const auto& [begin, end] : matches) {
    out.append(text.substr(last, begin - last));
    out.append(content);
    last = end;
  }
  out.append(text.substr(last));
  return out;
}

}  // namespace lattice::tokenizer
