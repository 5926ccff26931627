#include "launcher/serve/jinja/lexer.h"

#include <cctype>
#include <stdexcept>

#include "launcher/serve/chat_template.h"

namespace lattice::serve::jinja {

namespace {

[[noreturn]] void fail(int line, const std::string& message) {
  throw ChatTemplateError("line " + std::to_string(line) + ": " + message);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void rstrip_all(std::string& s) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
}

// lstrip_blocks: drop spaces and tabs between the last newline and a block tag.
void lstrip_line(std::string& s) {
  size_t i = s.size();
  while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) --i;
  if (i == 0 || s[i - 1] == '\n') s.resize(i);
}

// The position of the tag's closing "%}" / "}}", skipping string literals (which may contain either).
size_t find_tag_end(const std::string& src, size_t from, char close) {
  char quote = 0;
  for (size_t k = from; k + 1 < src.size(); ++k) {
    const char c = src[k];
    if (quote) {
      if (c == '\\') ++k;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == close && src[k + 1] == '}') {
      return k;
    }
  }
  return std::string::npos;
}

}  // namespace

std::vector<Segment> split_template(const std::string& source) {
  // Jinja drops one trailing newline of the template (keep_trailing_newline is off by default).
  const std::string src = !source.empty() && source.back() == '\n' ? source.substr(0, source.size() - 1) : source;
  std::vector<Segment> out;
  std::string text;
  int line = 1;
  size_t i = 0;
  bool strip_next = false;   // a -%} / -}} before this text
  bool trim_newline = false; // trim_blocks after %} / #}
  auto flush_text = [&] {
    if (!text.empty()) out.push_back({Segment::Kind::text, text, line});
    text.clear();
  };
  while (i < src.size()) {
    const bool tag = src[i] == '{' && i + 1 < src.size() && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#');
    if (!tag) {
      if (strip_next && is_space(src[i])) {
        if (src[i] == '\n') ++line;
        ++i;
        continue;
      }
      strip_next = false;
      if (trim_newline && src[i] == '\n') {
        trim_newline = false;
        ++line;
        ++i;
        continue;
      }
      trim_newline = false;
      if (src[i] == '\n') ++line;
      text += src[i++];
      continue;
    }
    strip_next = trim_newline = false;
    const char open = src[i + 1];
    const char close = open == '{' ? '}' : open == '%' ? '%' : '#';
    size_t j = i + 2;
    const bool minus_left = j < src.size() && src[j] == '-';
    const bool plus_left = j < src.size() && src[j] == '+';
    if (minus_left || plus_left) ++j;
    if (minus_left) {
      rstrip_all(text);
    } else if (open != '{' && !plus_left) {
      size_t b = i;  // lstrip_blocks only when the tag starts its line
      while (b > 0 && (src[b - 1] == ' ' || src[b - 1] == '\t')) --b;
      if (b == 0 || src[b - 1] == '\n') lstrip_line(text);
    }
    const size_t end = open == '#' ? src.find("#}", j) : find_tag_end(src, j, close);
    if (end == std::string::npos) fail(line, std::string("unclosed '{") + open + "'");
    size_t content_end = end;
    const bool minus_right = content_end > j && src[content_end - 1] == '-';
    if (minus_right || (content_end > j && src[content_end - 1] == '+')) --content_end;
    const std::string content = src.substr(j, content_end - j);
    flush_text();
    if (open != '#') out.push_back({open == '{' ? Segment::Kind::expression : Segment::Kind::statement, content, line});
    for (char c : src.substr(i, end + 2 - i))
      if (c == '\n') ++line;
    i = end + 2;
    strip_next = minus_right;
    trim_newline = !minus_right && open != '{';
  }
  flush_text();
  return out;
}

std::vector<Token> tokenize(const std::string& s, int line) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Token::Kind::name, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      bool is_float = j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]));
      if (is_float) {
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      std::string digits;
      for (size_t k = i; k < j; ++k)
        if (s[k] != '_') digits += s[k];
      Token t{is_float ? Token::Kind::number : Token::Kind::integer, digits};
      try {
        if (is_float) t.number = std::stod(digits);
        else t.integer = std::stoll(digits);
      } catch (const std::out_of_range&) {
        fail(line, "number " + digits + " is out of range");
      }
      out.push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string value;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) {
          value += s[j];
          continue;
        }
        const char e = s[++j];
        value += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
      if (j >= s.size()) fail(line, "unterminated string literal");
      out.push_back({Token::Kind::string, value});
      i = j + 1;
    } else {
      static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* t : two)
        if (s.compare(i, 2, t) == 0) op = t;
      if (op.size() == 1 && std::string("+-*/%~<>()[]{},:.=|").find(c) == std::string::npos)
        fail(line, std::string("unexpected character '") + c + "'");
      out.push_back({Token::Kind::op, op});
      i += op.size();
    }
  }
  out.push_back({Token::Kind::end, ""});
  return out;
}

}  // namespace lattice::serve::jinja
