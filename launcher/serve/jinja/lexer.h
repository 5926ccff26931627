// Splits a template into text and tags, applying whitespace control the way Hugging Face renders chat
// templates (trim_blocks and lstrip_blocks on, plus explicit {%- -%} / {{- -}}), and tokenizes tag contents.
#pragma once

#include <string>
#include <vector>

namespace lattice::serve::jinja {

struct Segment {
  enum class Kind { text, expression, statement };
  Kind kind;
  std::string content;  // text, or the inside of the tag without delimiters and - / + markers
  int line;
};

std::vector<Segment> split_template(const std::string& source);

struct Token {
  enum class Kind { name, string, integer, number, op, end };
  Kind kind;
  std::string text;  // name, operator, or the unescaped string
  double number = 0;
  long long integer = 0;
};

std::vector<Token> tokenize(const std::string& tag, int line);

}  // namespace lattice::serve::jinja
