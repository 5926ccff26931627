#include "engine/tokenizer/decoders.h"

#include <optional>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {
namespace {

// "<0xNN>" -> NN, the spelling HF's ByteFallback decoder recognises.
std::optional<unsigned char> byte_token_value(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int high = hex(token[3]), low = hex(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<unsigned char>(high * 16 + low);
}

}  // namespace

void ByteLevelDecoder::decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  std::string bytes;
  std::string token_bytes;
  for (const std::string& token : tokens) {
    token_bytes.clear();
    bool in_alphabet = true;
    size_t pos = 0;
    while (pos < token.size()) {
      const int byte = alphabet.decode_char(next_codepoint(token, pos));
      if (byte < 0) {
        in_alphabet = false;
        break;
      }
      token_bytes.push_back(static_cast<char>(byte));
    }
    // A token outside the alphabet (an added token, say) contributes its own UTF-8.
    bytes += in_alphabet ? token_bytes : token;
  }
  if (pending_tail) {
    const size_t tail = incomplete_utf8_tail(bytes);
    pending_tail->assign(bytes, bytes.size() - tail, tail);
    bytes.resize(bytes.size() - tail);
  }
  tokens.assign(1, lossy_utf8(bytes));
}

void ReplaceDecoder::decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const {
  for (std::string& token : tokens) token = pattern_.replace_all(token, content_);
}

void ByteFallbackDecoder::decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string run;
  auto flush_run = [&](bool at_end) {
    // A run still open at the end of a stream may lack the last bytes of its final character.
    if (at_end && pending_tail) {
      const size_t tail = incomplete_utf8_tail(run);
      if (tail > 0 && !find_invalid_utf8(std::string_view(run).substr(0, run.size() - tail))) {
        pending_tail->assign(run, run.size() - tail, tail);
        run.resize(run.size() - tail);
      }
    }
    if (run.empty()) return;
    if (find_invalid_utf8(run)) {
      for (size_t i = 0; i < run.size(); ++i) out.emplace_back(kReplacementChar);
    } else {
      out.push_back(run);
    }
    run.clear();
  };
  for (std::string& token : tokens) {
    if (const auto byte = byte_token_value(token)) {
      run.push_back(static_cast<char>(*byte));
    } else {
      flush_run(false);
      out.push_back(std::move(token));
    }
  }
  flush_run(true);
  tokens = std::move(out);
}

void FuseDecoder::decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const {
  std::string fused;
  for (const std::string& token : tokens) fused += token;
  tokens.assign(1, std::move(fused));
}

void StripDecoder::decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const {
  for (std::string& token : tokens) {
    std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
    size_t pos = 0;
    while (pos < token.size()) {
      const size_t begin = pos;
      chars.emplace_back(begin, next_codepoint(token, pos));
    }
    size_t start_cut = 0;
    for (size_t i = 0; i < start_ && i < chars.size() && chars[i].second == content_; ++i) start_cut = i + 1;
    size_t stop_cut = chars.size();
    for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
      const size_t index = chars.size() - i - 1;
      if (chars[index].second != content_ || index < start_cut) break;
      stop_cut = index;
    }
    const size_t begin = start_cut < chars.size() ? chars[start_cut].first : token.size();
    const size_t end = stop_cut < chars.size() ? chars[stop_cut].first : token.size();
    token = end > begin ? token.substr(begin, end - begin) : std::string();
  }
}

void MetaspaceDecoder::decode_chain(std::vector<std::string>& tokens, std::string* pending_tail) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool drop = i == 0 && scheme_ != PrependScheme::kNever;
    std::string out;
    out.reserve(tokens[i].size());
    size_t pos = 0;
    const std::string& token = tokens[i];
    while (pos < token.size()) {
      if (token.compare(pos, replacement_.size(), replacement_) == 0) {
        if (!drop) out.push_back(' ');
        pos += replacement_.size();
      } else {
        out.push_back(token[pos++]);
      }
    }
    tokens[i] = std::move(out);
  }
}

}  // namespace lattice::tokenizer
