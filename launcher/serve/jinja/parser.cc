#include "launcher/serve/jinja/parser.h"

#include "launcher/serve/chat_template.h"
#include "launcher/serve/jinja/lexer.h"
#include "launcher/serve/jinja/values.h"

namespace lattice::serve::jinja {

namespace {

// Counts one level of recursive descent for its lifetime; past kMaxDepth levels the parse fails instead of
// exhausting the stack.
class DepthGuard {
 public:
  DepthGuard(int& depth, int line) : depth_(depth) {
    if (++depth_ > kMaxDepth)
      throw ChatTemplateError("line " + std::to_string(line) + ": nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int& depth_;
};

// Expressions inside one tag, by Jinja's precedence: conditional, or, and, not, comparisons (and `in`),
// + -, ~, * / // %, unary -, then primaries with postfix .attr [index] (call) | filter and `is` tests.
class ExprParser {
 public:
  ExprParser(std::vector<Token> tokens, int line) : t_(std::move(tokens)), line_(line) {}

  ExprPtr expression() {
    DepthGuard guard(depth_, line_);
    return conditional();
  }
  bool at_end() const { return t_[p_].kind == Token::Kind::end; }
  bool peek_name(const char* name) const { return t_[p_].kind == Token::Kind::name && t_[p_].text == name; }
  bool peek_op(const char* op) const { return t_[p_].kind == Token::Kind::op && t_[p_].text == op; }
  std::string name() {
    if (t_[p_].kind != Token::Kind::name) fail("expected a name");
    return t_[p_++].text;
  }
  void expect_op(const char* op) {
    if (!peek_op(op)) fail(std::string("expected '") + op + "'");
    ++p_;
  }
  bool accept_op(const char* op) { return peek_op(op) ? (++p_, true) : false; }
  bool accept_name(const char* n) { return peek_name(n) ? (++p_, true) : false; }
  void expect_end() {
    if (!at_end()) fail("unexpected '" + t_[p_].text + "'");
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw ChatTemplateError("line " + std::to_string(line_) + ": " + message);
  }

 private:
  ExprPtr make(Expr::Kind kind, std::string name, std::vector<ExprPtr> args) const {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->name = std::move(name);
    e->args = std::move(args);
    e->line = line_;
    return e;
  }
  ExprPtr conditional() {
    DepthGuard guard(depth_, line_);
    ExprPtr value = or_expr();
    if (!accept_name("if")) return value;
    ExprPtr cond = or_expr();
    ExprPtr other = accept_name("else") ? conditional() : nullptr;
    return make(Expr::Kind::conditional, "", {cond, value, other});
  }
  ExprPtr or_expr() {
    ExprPtr left = and_expr();
    while (accept_name("or")) left = make(Expr::Kind::binary, "or", {left, and_expr()});
    return left;
  }
  ExprPtr and_expr() {
    ExprPtr left = not_expr();
    while (accept_name("and")) left = make(Expr::Kind::binary, "and", {left, not_expr()});
    return left;
  }
  ExprPtr not_expr() {
    DepthGuard guard(depth_, line_);
    if (accept_name("not")) return make(Expr::Kind::unary, "not", {not_expr()});
    return compare();
  }
  // Comparisons chain as in Python: a < b < c is (a < b) and (b < c).
  ExprPtr compare() {
    ExprPtr operand = additive();
    ExprPtr result;
    while (true) {
      std::string op;
      for (const char* o : {"==", "!=", "<", ">", "<=", ">="})
        if (peek_op(o)) op = o;
      if (!op.empty()) {
        ++p_;
      } else if (accept_name("in")) {
        op = "in";
      } else if (peek_name("not") && t_[p_ + 1].kind == Token::Kind::name && t_[p_ + 1].text == "in") {
        p_ += 2;
        op = "not in";
      } else {
        return result ? result : operand;
      }
      ExprPtr right = additive();
      ExprPtr comparison = make(Expr::Kind::binary, op, {operand, right});
      result = result ? make(Expr::Kind::binary, "and", {result, comparison}) : comparison;
      operand = right;
    }
  }
  ExprPtr additive() {
    ExprPtr left = concat();
    while (peek_op("+") || peek_op("-")) {
      const std::string op = t_[p_++].text;
      left = make(Expr::Kind::binary, op, {left, concat()});
    }
    return left;
  }
  ExprPtr concat() {
    ExprPtr left = multiplicative();
    while (accept_op("~")) left = make(Expr::Kind::binary, "~", {left, multiplicative()});
    return left;
  }
  ExprPtr multiplicative() {
    ExprPtr left = unary();
    while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
      const std::string op = t_[p_++].text;
      left = make(Expr::Kind::binary, op, {left, unary()});
    }
    return left;
  }
  // As in Jinja, filters and tests apply to the negated value: -3|abs is 3.
  ExprPtr unary(bool with_filters = true) {
    DepthGuard guard(depth_, line_);
    ExprPtr e;
    if (accept_op("-")) e = make(Expr::Kind::unary, "-", {unary(false)});
    else if (accept_op("+")) e = unary(false);
    else e = postfix(primary());
    return with_filters ? filters(e) : e;
  }
  void arguments(Expr& call) {  // after '('
    while (!accept_op(")")) {
      if (t_[p_].kind == Token::Kind::name && t_[p_ + 1].kind == Token::Kind::op && t_[p_ + 1].text == "=") {
        const std::string key = name();
        ++p_;
        call.kwargs.emplace_back(key, expression());
      } else {
        call.args.push_back(expression());
      }
      if (!peek_op(")")) expect_op(",");
    }
  }
  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (accept_op(".")) {
        e = make(Expr::Kind::attr, name(), {e});
      } else if (accept_op("[")) {
        ExprPtr parts[3] = {nullptr, nullptr, nullptr};
        int part = 0;
        bool slice = false;
        while (!accept_op("]")) {
          if (accept_op(":")) {
            slice = true;
            if (++part > 2) fail("too many ':' in a slice");
            continue;
          }
          parts[part] = expression();
        }
        e = slice ? make(Expr::Kind::slice, "", {e, parts[0], parts[1], parts[2]}) : make(Expr::Kind::index, "", {e, parts[0]});
        if (!slice && !parts[0]) fail("empty subscript");
      } else if (accept_op("(")) {
        auto call = std::make_shared<Expr>(*make(Expr::Kind::call, "", {e}));
        arguments(*call);
        e = call;
      } else {
        return e;
      }
    }
  }
  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        auto filter = std::make_shared<Expr>(*make(Expr::Kind::filter, name(), {e}));
        if (accept_op("(")) arguments(*filter);
        e = filter;
      } else if (accept_name("is")) {
        const bool negated = accept_name("not");
        auto test = std::make_shared<Expr>(*make(Expr::Kind::test, name(), {e}));
        test->negated = negated;
        if (accept_op("(")) {
          arguments(*test);
        } else if (!at_end() && (t_[p_].kind == Token::Kind::string || t_[p_].kind == Token::Kind::integer ||
                                 t_[p_].kind == Token::Kind::number || peek_name("none") || peek_name("true") || peek_name("false"))) {
          test->args.push_back(primary());  // `is sameas false`, `is equalto 3`
        }
        e = test;
      } else {
        return e;
      }
    }
  }
  ExprPtr literal(Json v) const {
    auto e = std::make_shared<Expr>(*make(Expr::Kind::literal, "", {}));
    e->value = Value{std::move(v)};
    return e;
  }
  ExprPtr primary() {
    const Token tok = t_[p_++];
    switch (tok.kind) {
      case Token::Kind::string: {
        std::string s = tok.text;
        while (t_[p_].kind == Token::Kind::string) s += t_[p_++].text;  // adjacent literals concatenate
        return literal(s);
      }
      case Token::Kind::integer: return literal(tok.integer);
      case Token::Kind::number: return literal(tok.number);
      case Token::Kind::name:
        if (tok.text == "true" || tok.text == "True") return literal(true);
        if (tok.text == "false" || tok.text == "False") return literal(false);
        if (tok.text == "none" || tok.text == "None") return literal(nullptr);
        return make(Expr::Kind::name, tok.text, {});
      case Token::Kind::op:
        if (tok.text == "(") {
          ExprPtr inner = expression();
          if (accept_op(",")) {  // a tuple: treated as a list
            std::vector<ExprPtr> items = {inner};
            while (!peek_op(")")) {
              items.push_back(expression());
              if (!peek_op(")")) expect_op(",");
            }
            inner = make(Expr::Kind::list, "", items);
          }
          expect_op(")");
          return inner;
        }
        if (tok.text == "[") {
          std::vector<ExprPtr> items;
          while (!accept_op("]")) {
            items.push_back(expression());
            if (!peek_op("]")) expect_op(",");
          }
          return make(Expr::Kind::list, "", items);
        }
        if (tok.text == "{") {
          std::vector<ExprPtr> items;  // key, value, key, value...
          while (!accept_op("}")) {
            items.push_back(expression());
            expect_op(":");
            items.push_back(expression());
            if (!peek_op("}")) expect_op(",");
          }
          return make(Expr::Kind::dict, "", items);
        }
        break;
      case Token::Kind::end: fail("unexpected end of expression");
    }
    fail("unexpected '" + tok.text + "'");
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  int line_;
  int depth_ = 0;
};

class TemplateParser {
 public:
  explicit TemplateParser(std::vector<Segment> segments) : s_(std::move(segments)) {}

  Body parse() {
    Body body = block({});
    if (pos_ < s_.size()) fail(s_[pos_].line, "unexpected '{% " + keyword_ + " %}'");
    return body;
  }

 private:
  [[noreturn]] static void fail(int line, const std::string& message) {
    throw ChatTemplateError("line " + std::to_string(line) + ": " + message);
  }
  static std::string first_word(const std::string& content) {
    const size_t b = content.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    const size_t e = content.find_first_of(" \t\r\n", b);
    return content.substr(b, e == std::string::npos ? std::string::npos : e - b);
  }
  // Parses nodes until a statement whose keyword is in `stops` (left in keyword_, not consumed).
  Body block(const std::vector<std::string>& stops) {
    Body body;
    while (pos_ < s_.size()) {
      const Segment& seg = s_[pos_];
      auto node = std::make_shared<Node>();
      node->line = seg.line;
      if (seg.kind == Segment::Kind::text) {
        node->kind = Node::Kind::text;
        node->text = seg.content;
        ++pos_;
      } else if (seg.kind == Segment::Kind::expression) {
        ExprParser p(tokenize(seg.content, seg.line), seg.line);
        node->kind = Node::Kind::output;
        node->expr = p.expression();
        p.expect_end();
        ++pos_;
      } else {
        keyword_ = first_word(seg.content);
        for (const std::string& stop : stops)
          if (keyword_ == stop) return body;
        statement(*node);
      }
      body.push_back(node);
    }
    if (!stops.empty()) fail(s_.empty() ? 0 : s_.back().line, "missing '{% " + stops.back() + " %}'");
    return body;
  }
  void statement(Node& node) {
    DepthGuard guard(depth_, s_[pos_].line);
    const Segment& seg = s_[pos_++];
    ExprParser p(tokenize(seg.content, seg.line), seg.line);
    const std::string kw = p.name();
    if (kw == "if") {
      node.kind = Node::Kind::if_;
      ExprPtr cond = p.expression();
      p.expect_end();
      while (true) {
        Body body = block({"elif", "else", "endif"});
        node.branches.emplace_back(cond, std::move(body));
        const Segment& end = s_[pos_++];
        ExprParser q(tokenize(end.content, end.line), end.line);
        const std::string k = q.name();
        if (k == "endif") break;
        if (k == "else") {
          q.expect_end();
          node.branches.emplace_back(nullptr, block({"endif"}));
          ++pos_;
          break;
        }
        cond = q.expression();
        q.expect_end();
      }
    } else if (kw == "for") {
      node.kind = Node::Kind::for_;
      node.targets.push_back(p.name());
      while (p.accept_op(",")) node.targets.push_back(p.name());
      if (!p.accept_name("in")) p.fail("expected 'in' in a for loop");
      node.expr = p.expression();
      // `for x in xs if cond`: the conditional parser took `if` as a ternary without else; undo that.
      if (node.expr->kind == Expr::Kind::conditional && !node.expr->args[2]) {
        node.filter = node.expr->args[0];
        node.expr = node.expr->args[1];
      }
      if (p.accept_name("recursive")) p.fail("recursive loops are not supported");
      p.expect_end();
      node.body = block({"else", "endfor"});
      if (keyword_ == "else") {
        ++pos_;
        node.else_body = block({"endfor"});
      }
      ++pos_;
    } else if (kw == "set") {
      node.kind = Node::Kind::set;
      node.targets.push_back(p.name());
      if (p.accept_op(".")) node.attr = p.name();
      if (!p.accept_op("=")) p.fail("block {% set %} is not supported; use {% set name = value %}");
      node.expr = p.expression();
      p.expect_end();
    } else if (kw == "macro") {
      node.kind = Node::Kind::macro;
      node.targets.push_back(p.name());
      p.expect_op("(");
      while (!p.accept_op(")")) {
        node.targets.push_back(p.name());
        node.defaults.push_back(p.accept_op("=") ? p.expression() : nullptr);
        if (!p.peek_op(")")) p.expect_op(",");
      }
      p.expect_end();
      node.body = block({"endmacro"});
      ++pos_;
    } else {
      p.fail("unsupported tag '{% " + kw + " %}'");
    }
  }

  std::vector<Segment> s_;
  size_t pos_ = 0;
  std::string keyword_;
  int depth_ = 0;
};

}  // namespace

Body parse_template(const std::string& source) { return TemplateParser(split_template(source)).parse(); }

}  // namespace lattice::serve::jinja
