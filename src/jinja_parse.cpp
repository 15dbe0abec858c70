// Template::parse: source -> Program (src/jinja_ast.h). Two passes in one loop: the lexer
// splits text from tags and applies whitespace control the way Jinja's lexer does with
// trim_blocks and lstrip_blocks (transformers' settings); each tag's inside is tokenized and
// parsed by recursive descent with Jinja's precedence (parser.py: condexpr < or < and < not
// < compare < + - < ~ < * / // % < ** < unary < postfix < filters and tests).
#include <cstring>

#include "src/jinja_ast.h"
#include "src/jinja_builtins.h"
#include "src/jinja_template.h"
#include "src/pretokenizer.h"

namespace r1kit::jinja {
namespace {

struct Token {
  enum class Kind { kName, kString, kInt, kFloat, kOp, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;  // name, operator, or the decoded string
  Value value;       // numbers
  Location loc;
};

// A piece of the source: text, or one tag's tokens (ending with a kEnd token).
struct Piece {
  enum class Kind { kText, kOutput, kStatement };
  Kind kind = Kind::kText;
  std::string text;
  std::vector<Token> tokens;
  Location loc;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : src_(source), name_(name) {
    // keep_trailing_newline=False: one trailing newline of the source is not output.
    if (src_.size() >= 2 && src_.compare(src_.size() - 2, 2, "\r\n") == 0) {
      src_.resize(src_.size() - 2);
    } else if (!src_.empty() && src_.back() == '\n') {
      src_.pop_back();
    }
  }

  std::vector<Piece> run() {
    std::vector<Piece> pieces;
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      std::string text = src_.substr(pos_, tag - pos_);
      Location text_loc = location(pos_);
      if (tag == src_.size()) {
        push_text(pieces, std::move(text), text_loc);
        break;
      }
      char type = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (sign != '+' && type != '{') {
        // lstrip_blocks: spaces between a line's start and a block or comment tag go.
        size_t line_begin = text.rfind('\n');
        line_begin = line_begin == std::string::npos ? 0 : line_begin + 1;
        if (line_begin > 0 || line_starting) {
          bool blank = line_begin < text.size();
          for (size_t i = line_begin; i < text.size(); ++i) blank = blank && is_space(text[i]);
          if (blank) text.resize(line_begin);
        }
      }
      push_text(pieces, std::move(text), text_loc);
      pos_ = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      Location tag_loc = location(tag);
      char close_sign = '\0';
      if (type == '#') {
        size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) fail(tag_loc, "comment is not closed (missing '#}')");
        if (end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+')) close_sign = src_[end - 1];
        pos_ = end + 2;
      } else {
        Piece piece;
        piece.kind = type == '{' ? Piece::Kind::kOutput : Piece::Kind::kStatement;
        piece.loc = tag_loc;
        close_sign = lex_tag(type == '{' ? '}' : '%', piece.tokens, tag_loc);
        pieces.push_back(std::move(piece));
      }
      // After the tag: '-' eats all whitespace; trim_blocks eats one newline after a block or
      // comment tag (not after {{ }}), unless the tag ends with '+'.
      size_t before = pos_;
      if (close_sign == '-') {
        while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      } else if (close_sign != '+' && type != '{' && pos_ < src_.size() && src_[pos_] == '\n') {
        ++pos_;
      }
      line_starting = pos_ > before && src_[pos_ - 1] == '\n';
    }
    return pieces;
  }

 private:
  [[noreturn]] void fail(Location loc, const std::string& what) const {
    throw Error(name_ + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) + ": " + what);
  }

  Location location(size_t offset) const {
    Location loc;
    for (size_t i = 0; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++loc.line;
        loc.column = 1;
      } else if ((static_cast<unsigned char>(src_[i]) & 0xc0) != 0x80) {
        ++loc.column;
      }
    }
    return loc;
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // Jinja normalizes the newlines of template data to "\n".
  static void push_text(std::vector<Piece>& pieces, std::string text, Location loc) {
    if (text.empty()) return;
    std::string normalized;
    normalized.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r') {
        normalized += '\n';
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      } else {
        normalized += text[i];
      }
    }
    Piece piece;
    piece.kind = Piece::Kind::kText;
    piece.text = std::move(normalized);
    piece.loc = loc;
    pieces.push_back(std::move(piece));
  }

  // Tokens up to the tag's end ("}}" or "%}", brackets balanced); returns the end's sign.
  char lex_tag(char closer, std::vector<Token>& tokens, Location tag_loc) {
    int depth = 0;
    while (true) {
      // An expression's tree is at most as deep as its tag is long, and the renderer recurses
      // over it: real templates' tags hold tens of tokens.
      if (tokens.size() > kMaxTagTokens) fail(tag_loc, "a tag of more than 2048 tokens");
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) fail(tag_loc, std::string("tag is not closed (missing '") + closer + "}')");
      Location loc = location(pos_);
      auto at = [&](const char* s) { return src_.compare(pos_, std::strlen(s), s) == 0; };
      std::string end2 = std::string(1, closer) + "}";
      if (depth == 0) {
        for (char sign : {'-', '+'}) {
          if (src_[pos_] == sign && src_.compare(pos_ + 1, 2, end2) == 0 && (sign == '-' || closer == '%')) {
            pos_ += 3;
            tokens.push_back(Token{Token::Kind::kEnd, "", {}, loc});
            return sign;
          }
        }
        if (at(end2.c_str())) {
          pos_ += 2;
          tokens.push_back(Token{Token::Kind::kEnd, "", {}, loc});
          return '\0';
        }
      }
      char c = src_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t start = pos_;
        while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
          ++pos_;
        tokens.push_back(Token{Token::Kind::kName, src_.substr(start, pos_ - start), {}, loc});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        tokens.push_back(lex_number(loc));
      } else if (c == '\'' || c == '"') {
        tokens.push_back(Token{Token::Kind::kString, lex_string(loc), {}, loc});
      } else {
        static const char* kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                     ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ".", ",", ":", "|"};
        const char* op = nullptr;
        for (const char* o : kOps) {
          if (at(o)) {
            op = o;
            break;
          }
        }
        if (!op) fail(loc, std::string("unexpected character '") + c + "'");
        if (std::strchr("([{", op[0]) && op[1] == '\0') ++depth;
        if (std::strchr(")]}", op[0]) && op[1] == '\0') --depth;
        pos_ += std::strlen(op);
        tokens.push_back(Token{Token::Kind::kOp, op, {}, loc});
      }
    }
  }

  Token lex_number(Location loc) {
    size_t start = pos_;
    bool is_float = false;
    auto digits = [&] {
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
    };
    digits();
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t save = pos_++;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
      if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
        is_float = true;
        digits();
      } else {
        pos_ = save;
      }
    }
    std::string text;
    for (size_t i = start; i < pos_; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    Token t{is_float ? Token::Kind::kFloat : Token::Kind::kInt, text, {}, loc};
    try {
      t.value = is_float ? Value(std::stod(text)) : Value(static_cast<int64_t>(std::stoll(text)));
    } catch (const std::exception&) {
      fail(loc, "number out of range: " + text);
    }
    return t;
  }

  // A string literal with Python's escapes (Jinja decodes them with unicode-escape).
  std::string lex_string(Location loc) {
    char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) fail(loc, "string literal is not closed");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) fail(loc, "string literal is not closed");
      char e = src_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '0':
          out += '\0';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;
        case 'x':
        case 'u':
        case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t i = 0; i < n; ++i) {
            const char h = pos_ + i < src_.size() ? src_[pos_ + i] : '\0';
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail(loc, "invalid \\" + std::string(1, e) + " escape");
            cp = cp * 16 +
                 static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(loc, "escape is not a Unicode scalar value");
          pos_ += n;
          utf8_append(out, cp);
          break;
        }
        default:
          out += '\\';
          out += e;
      }
    }
    return out;
  }

  static constexpr size_t kMaxTagTokens = 2048;
  std::string src_;
  const std::string& name_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(std::vector<Piece> pieces, const std::string& name) : pieces_(std::move(pieces)), name_(name) {}

  Body parse_template() {
    Body body = parse_body({});
    if (piece_ < pieces_.size()) fail(pieces_[piece_].loc, "unexpected '" + current().text + "'");
    return body;
  }

  bool has_generation() const { return has_generation_; }

 private:
  [[noreturn]] void fail(Location loc, const std::string& what) const {
    throw Error(name_ + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) + ": " + what);
  }

  // --- statements -------------------------------------------------------------------------

  // Nodes until a statement tag whose keyword is in `stops` (left current, keyword consumed
  // by the caller) or the end of the template.
  Body parse_body(const std::vector<std::string>& stops) {
    Body body;
    while (piece_ < pieces_.size()) {
      Piece& piece = pieces_[piece_];
      if (piece.kind == Piece::Kind::kText) {
        Node node;
        node.kind = Node::Kind::kText;
        node.loc = piece.loc;
        node.text = std::move(piece.text);
        body.push_back(std::move(node));
        ++piece_;
        continue;
      }
      token_ = 0;
      if (piece.kind == Piece::Kind::kOutput) {
        Node node;
        node.kind = Node::Kind::kOutput;
        node.loc = piece.loc;
        node.expr = parse_tuple(true);
        expect_end();
        body.push_back(std::move(node));
        ++piece_;
        continue;
      }
      const Token& keyword = current();
      if (keyword.kind != Token::Kind::kName) fail(keyword.loc, "expected a statement keyword");
      for (const auto& stop : stops) {
        if (keyword.text == stop) return body;
      }
      body.push_back(parse_statement());
    }
    if (!stops.empty()) {
      fail(pieces_.empty() ? Location{} : pieces_.back().loc,
           "unexpected end of template: missing '" + stops.back() + "'");
    }
    return body;
  }

  // Consumes the keyword tag `keyword` that parse_body stopped at.
  void end_tag(const std::string& keyword) {
    if (current().text != keyword) fail(current().loc, "expected '" + keyword + "'");
    ++token_;
    expect_end();
    ++piece_;
  }

  Node parse_statement() {
    if (++depth_ > kMaxDepth) fail(current().loc, "statements nested deeper than 100");
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    Token keyword = take();
    Node node;
    node.loc = keyword.loc;
    const std::string& k = keyword.text;
    if (k == "if") {
      node.kind = Node::Kind::kIf;
      ExprPtr cond = parse_tuple(true);
      expect_end();
      ++piece_;
      while (true) {
        Body body = parse_body({"elif", "else", "endif"});
        node.branches.emplace_back(std::move(cond), std::move(body));
        const std::string stop = current().text;
        if (stop == "elif") {
          ++token_;
          cond = parse_tuple(true);
          expect_end();
          ++piece_;
          continue;
        }
        if (stop == "else") {
          end_tag("else");
          node.else_body = parse_body({"endif"});
        }
        end_tag("endif");
        return node;
      }
    }
    if (k == "for") {
      node.kind = Node::Kind::kFor;
      do {
        node.targets.push_back(expect_name("a loop variable"));
      } while (take_op(","));
      if (!take_name("in")) fail(current().loc, "expected 'in'");
      node.expr = parse_tuple(false);
      if (take_name("if")) node.filter = parse_tuple(true);
      if (current().kind == Token::Kind::kName && current().text == "recursive") {
        fail(current().loc, "recursive loops are not supported");
      }
      expect_end();
      ++piece_;
      node.body = parse_body({"else", "endfor"});
      if (current().text == "else") {
        end_tag("else");
        node.else_body = parse_body({"endfor"});
      }
      end_tag("endfor");
      return node;
    }
    if (k == "set") {
      node.targets.push_back(expect_name("a variable name"));
      if (take_op(".")) node.targets.push_back(expect_name("an attribute name"));
      if (take_op("=")) {
        node.kind = Node::Kind::kSet;
        node.expr = parse_tuple(true);
        expect_end();
        ++piece_;
        return node;
      }
      if (node.targets.size() != 1) fail(current().loc, "expected '='");
      node.kind = Node::Kind::kSetBlock;
      expect_end();
      ++piece_;
      node.body = parse_body({"endset"});
      end_tag("endset");
      return node;
    }
    if (k == "macro") {
      node.kind = Node::Kind::kMacro;
      node.name = expect_name("a macro name");
      expect_op("(");
      while (!take_op(")")) {
        if (!node.params.empty()) expect_op(",");
        std::string param = expect_name("a parameter name");
        ExprPtr def;
        if (take_op("=")) def = parse_expression(true);
        node.params.emplace_back(param, std::move(def));
      }
      expect_end();
      ++piece_;
      node.body = parse_body({"endmacro"});
      end_tag("endmacro");
      return node;
    }
    if (k == "break" || k == "continue") {
      node.kind = k == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect_end();
      ++piece_;
      return node;
    }
    if (k == "generation") {
      node.kind = Node::Kind::kGeneration;
      has_generation_ = true;
      expect_end();
      ++piece_;
      node.body = parse_body({"endgeneration"});
      end_tag("endgeneration");
      return node;
    }
    if (k == "elif" || k == "else" || k.rfind("end", 0) == 0) fail(keyword.loc, "unexpected '" + k + "'");
    fail(keyword.loc, "unsupported tag '" + k + "'");
  }

  // --- tokens -----------------------------------------------------------------------------

  const Token& current() const { return pieces_[piece_].tokens[token_]; }
  Token take() {
    Token t = current();
    if (t.kind != Token::Kind::kEnd) ++token_;
    return t;
  }
  bool is_op(const char* op) const { return current().kind == Token::Kind::kOp && current().text == op; }
  bool is_name(const char* name) const { return current().kind == Token::Kind::kName && current().text == name; }
  bool take_op(const char* op) {
    if (!is_op(op)) return false;
    ++token_;
    return true;
  }
  bool take_name(const char* name) {
    if (!is_name(name)) return false;
    ++token_;
    return true;
  }
  void expect_op(const char* op) {
    if (!take_op(op)) fail(current().loc, std::string("expected '") + op + "'" + found());
  }
  std::string expect_name(const char* what) {
    if (current().kind != Token::Kind::kName) fail(current().loc, std::string("expected ") + what + found());
    return take().text;
  }
  void expect_end() {
    if (current().kind != Token::Kind::kEnd) fail(current().loc, "expected the end of the tag" + found());
  }
  std::string found() const {
    const Token& t = current();
    if (t.kind == Token::Kind::kEnd) return ", found the end of the tag";
    return ", found '" + t.text + "'";
  }

  ExprPtr make(Expr::Kind kind, Location loc) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
  }

  // --- expressions ------------------------------------------------------------------------

  // `a, b` without brackets is a tuple (a list here).
  ExprPtr parse_tuple(bool with_condexpr) {
    Location loc = current().loc;
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto list = make(Expr::Kind::kList, loc);
    list->name = "tuple";
    list->items.push_back(std::move(first));
    while (take_op(",")) {
      if (current().kind == Token::Kind::kEnd || is_op(")")) break;
      list->items.push_back(parse_expression(with_condexpr));
    }
    return list;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    if (!with_condexpr) return parse_or();
    Location loc = current().loc;
    ExprPtr expr = parse_or();
    while (take_name("if")) {
      auto cond = make(Expr::Kind::kConditional, loc);
      cond->a = std::move(expr);
      cond->b = parse_or();
      if (take_name("else")) cond->c = parse_expression(true);
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      auto e = make(Expr::Kind::kOr, take().loc);
      e->a = std::move(left);
      e->b = parse_and();
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      auto e = make(Expr::Kind::kAnd, take().loc);
      e->a = std::move(left);
      e->b = parse_not();
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      if (++depth_ > kMaxDepth) fail(current().loc, "expressions nested deeper than 100");
      struct Leave {
        int& depth;
        ~Leave() { --depth; }
      } leave{depth_};
      auto e = make(Expr::Kind::kUnary, take().loc);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    Location loc = current().loc;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (is_op("==") || is_op("!=") || is_op("<") || is_op("<=") || is_op(">") || is_op(">=")) {
        op = take().text;
      } else if (is_name("in")) {
        ++token_;
        op = "in";
      } else if (is_name("not") && token_ + 1 < pieces_[piece_].tokens.size() &&
                 pieces_[piece_].tokens[token_ + 1].kind == Token::Kind::kName &&
                 pieces_[piece_].tokens[token_ + 1].text == "in") {
        token_ += 2;
        op = "not in";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Kind::kCompare, loc);
        cmp->items.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr binary(std::string op, ExprPtr left, ExprPtr right, Location loc) {
    auto e = make(Expr::Kind::kBinary, loc);
    e->name = std::move(op);
    e->a = std::move(left);
    e->b = std::move(right);
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      Token op = take();
      left = binary(op.text, std::move(left), parse_concat(), op.loc);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      Token op = take();
      left = binary("~", std::move(left), parse_math2(), op.loc);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Token op = take();
      left = binary(op.text, std::move(left), parse_pow(), op.loc);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      Token op = take();
      left = binary("**", std::move(left), parse_unary(true), op.loc);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    // The parser and the renderer recurse once per nesting level: a limit keeps `((((...` an
    // error instead of a stack overflow.
    if (++depth_ > kMaxDepth) fail(current().loc, "expressions nested deeper than 100");
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      Token op = take();
      node = make(Expr::Kind::kUnary, op.loc);
      node->name = op.text;
      node->a = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filters(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    Token t = take();
    switch (t.kind) {
      case Token::Kind::kName: {
        auto e = make(Expr::Kind::kLiteral, t.loc);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case Token::Kind::kString: {
        std::string s = t.text;
        while (current().kind == Token::Kind::kString) s += take().text;  // "a" "b" is "ab"
        auto e = make(Expr::Kind::kLiteral, t.loc);
        e->literal = Value(std::move(s));
        return e;
      }
      case Token::Kind::kInt:
      case Token::Kind::kFloat: {
        auto e = make(Expr::Kind::kLiteral, t.loc);
        e->literal = t.value;
        return e;
      }
      case Token::Kind::kOp: {
        if (t.text == "(") {
          if (take_op(")")) {
            auto empty = make(Expr::Kind::kList, t.loc);
            empty->name = "tuple";
            return empty;
          }
          ExprPtr inner = parse_tuple(true);
          expect_op(")");
          return inner;
        }
        if (t.text == "[") {
          auto e = make(Expr::Kind::kList, t.loc);
          while (!take_op("]")) {
            if (!e->items.empty()) expect_op(",");
            if (take_op("]")) break;  // trailing comma
            e->items.push_back(parse_expression(true));
          }
          return e;
        }
        if (t.text == "{") {
          auto e = make(Expr::Kind::kDict, t.loc);
          while (!take_op("}")) {
            if (!e->items.empty()) expect_op(",");
            if (take_op("}")) break;
            e->items.push_back(parse_expression(true));
            expect_op(":");
            e->items.push_back(parse_expression(true));
          }
          return e;
        }
        fail(t.loc, "unexpected '" + t.text + "'");
      }
      case Token::Kind::kEnd:
        fail(t.loc, "expected an expression, found the end of the tag");
    }
    fail(t.loc, "unexpected token");
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        Location loc = take().loc;
        if (current().kind == Token::Kind::kInt) {  // x.0 is x[0]
          auto e = make(Expr::Kind::kSubscript, loc);
          e->a = std::move(node);
          e->b = make(Expr::Kind::kLiteral, loc);
          e->b->literal = take().value;
          node = std::move(e);
          continue;
        }
        auto e = make(Expr::Kind::kAttribute, loc);
        e->a = std::move(node);
        e->name = expect_name("an attribute name");
        node = std::move(e);
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    Location loc = take().loc;  // '['
    ExprPtr start;
    if (!is_op(":")) start = parse_expression(true);
    if (!take_op(":")) {
      expect_op("]");
      auto e = make(Expr::Kind::kSubscript, loc);
      e->a = std::move(node);
      e->b = std::move(start);
      return e;
    }
    auto e = make(Expr::Kind::kSlice, loc);
    e->a = std::move(node);
    e->items.push_back(std::move(start));
    e->items.push_back(is_op(":") || is_op("]") ? nullptr : parse_expression(true));
    ExprPtr step;
    if (take_op(":") && !is_op("]")) step = parse_expression(true);
    e->items.push_back(std::move(step));
    expect_op("]");
    return e;
  }

  // `(` args `)` into e->items / e->kwargs.
  void parse_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!take_op(")")) {
      if (!first) {
        expect_op(",");
        if (take_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail(current().loc, "*args and **kwargs are not supported");
      const auto& tokens = pieces_[piece_].tokens;
      if (current().kind == Token::Kind::kName && token_ + 1 < tokens.size() &&
          tokens[token_ + 1].kind == Token::Kind::kOp && tokens[token_ + 1].text == "=") {
        std::string key = take().text;
        ++token_;
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail(current().loc, "positional argument after a keyword argument");
        e.items.push_back(parse_expression(true));
      }
    }
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(Expr::Kind::kCall, node->loc);  // errors point at the callee
    e->a = std::move(node);
    parse_args(*e);
    return e;
  }

  ExprPtr parse_filters(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        Location loc = take().loc;
        auto e = make(Expr::Kind::kFilter, loc);
        e->name = expect_name("a filter name");
        if (!is_filter(e->name)) fail(loc, "unknown filter '" + e->name + "'");
        e->a = std::move(node);
        if (is_op("(")) parse_args(*e);
        node = std::move(e);
      } else if (is_name("is")) {
        Location loc = take().loc;
        auto e = make(Expr::Kind::kTest, loc);
        e->negated = take_name("not");
        // `is none`, `is true`: literals are test names here.
        if (current().kind != Token::Kind::kName) fail(current().loc, "expected a test name" + found());
        e->name = take().text;
        if (!is_test(e->name)) fail(loc, "unknown test '" + e->name + "'");
        e->a = std::move(node);
        if (is_op("(")) {
          parse_args(*e);
        } else if ((current().kind == Token::Kind::kString || current().kind == Token::Kind::kInt ||
                    current().kind == Token::Kind::kFloat || is_op("[") || is_op("{") ||
                    (current().kind == Token::Kind::kName && !is_name("else") && !is_name("or") && !is_name("and") &&
                     !is_name("if") && !is_name("in") && !is_name("not")))) {
          e->items.push_back(parse_primary());  // `is divisibleby 3`, `is sameas none`
        }
        node = std::move(e);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::vector<Piece> pieces_;
  const std::string& name_;
  size_t piece_ = 0;
  size_t token_ = 0;
  bool has_generation_ = false;
  int depth_ = 0;
  static constexpr int kMaxDepth = 100;
};

}  // namespace

Template Template::parse(const std::string& source, const std::string& name) {
  auto program = std::make_shared<Program>();
  program->name = name;
  Parser parser(Lexer(source, name).run(), name);
  program->body = parser.parse_template();
  program->has_generation = parser.has_generation();
  Template t;
  t.program_ = std::move(program);
  return t;
}

bool Template::has_generation_blocks() const { return program_->has_generation; }
const std::string& Template::name() const { return program_->name; }

}  // namespace r1kit::jinja
