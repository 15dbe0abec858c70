// LaTeX / plain-text answer -> expression tree (see math_parse.h).
#include "rewards/math_parse.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <cmath>
#include <cstdlib>
#include <set>

namespace r1kit::rewards::math {
namespace {

constexpr size_t kMaxChars = 4000;  // longer "answers" are prose, not a final answer
constexpr int kMaxDepth = 120;      // recursion guard: a hostile ((((((... cannot blow the stack

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

const std::set<std::string>& function_names();

// String-level normalisation shared by every answer; see the header for the list.
std::string normalize_latex(std::string s) {
  static const std::vector<std::pair<std::string, std::string>> kLiteral = {
      {"\u2212", "-"},
      {"\u00d7", "\\times "},
      {"\u00b7", "\\cdot "},
      {"\u00f7", "\\div "},
      {"\u03c0", "\\pi "},
      {"\u221a", "\\sqrt"},
      {"\u221e", "\\infty "},
      {"\u00b1", "\\pm "},
      {"\u2260", "\\ne "},
      {"\u2264", "\\le "},
      {"\u2265", "\\ge "},
      {"\u00b0", ""},
      {"\u2208", "\\in "},
      {"\u222a", "\\cup "},
      {"\u00a0", " "},
      {"\\dfrac", "\\frac"},
      {"\\tfrac", "\\frac"},
      {"\\cfrac", "\\frac"},
      {"\\left.", ""},
      {"\\right.", ""},
      {"\\left", ""},
      {"\\right", ""},
      {"\\bigl", ""},
      {"\\bigr", ""},
      {"\\Bigl", ""},
      {"\\Bigr", ""},
      {"\\displaystyle", " "},
      {"\\limits", ""},
      {"{,}", ""},
      {"\\qquad", " "},
      {"\\quad", " "},
      {"^{\\circ}", ""},
      {"^\\circ", ""},
      {"\\circ", ""},
      {"^{\\degree}", ""},
      {"^\\degree", ""},
      {"\\degree", ""},
      {"\\%", "%"},
      {"\\$", ""},
      {"$", ""},
      {"\\textbf{", "\\text{"},
      {"\\textnormal{", "\\text{"},
      {"\\textit{", "\\text{"},
      {"\\textrm{", "\\text{"},
      {"\\texttt{", "\\text{"},
      {"\\mbox{", "\\text{"},
      {"\\textup{", "\\text{"},
      {"\\textsf{", "\\text{"},
      {"\\hbox{", "\\text{"},
      {"\\mathbf{", "{"},
      {"\\mathit{", "{"},
      {"\\boldsymbol{", "{"},
      {"\\bm{", "{"},
      {"\\mathnormal{", "{"},
      {"\\mathsf{", "{"},
      {"\\emph{", "{"},
      {"\\boxed{", "{"},
      {"\\fbox{", "{"},
      {"\\overline{", "{"},
      {"\\ldots", " "},
      {"\\cdots", " "},
      {"\\dots", " "},
      {"\\lt", "<"},
      {"\\gt", ">"},
      {"\\leqslant", "\\le "},
      {"\\geqslant", "\\ge "},
      {"\\leq", "\\le "},
      {"\\geq", "\\ge "},
      {"\\neq", "\\ne "},
      {"\\mp", "\\pm "},  // the comparer expands both signs either way
      {"\\!", ""},
      {"\\,", " "},
      {"\\;", " "},
      {"\\:", " "},
      {"\\ ", " "},
      {"~", " "},
      {"\t", " "},
      {"\n", " "},
      {"\r", " "},
  };
  // ",\!" between digits is a thousands separator (MATH writes 10,\!080).
  static const RE2 kThinThousands(R"((\d),\\!\s*(\d\d\d))");
  while (RE2::GlobalReplace(&s, kThinThousands, "\\1\\2") > 0) {
  }
  // Text that was escaped twice ("\\frac" written as "\\\\frac" in JSON/Python sources):
  // two backslashes before a command name are one. Not in matrices, where \\ ends a row.
  if (s.find("begin{") == std::string::npos) {
    static const RE2 kDoubleEscaped(R"((^|[^\\])\\\\([a-zA-Z]))");
    RE2::GlobalReplace(&s, kDoubleEscaped, "\\1\\\\\\2");
  }
  // Protect "\\\\" (a matrix row break) from the "\\ " / "\\," spacing rules below.
  replace_all(s, "\\\\", "\x01");
  for (const auto& [from, to] : kLiteral) replace_all(s, from, to);
  replace_all(s, "\x01", " \\\\ ");
  // \operatorname{sec} / \mathrm{ln} -> \sec / \ln; any other \mathrm{X} -> {X}.
  for (std::string_view pre : {std::string_view("\\operatorname{"), std::string_view("\\mathrm{")}) {
    size_t pos = 0;
    while ((pos = s.find(pre, pos)) != std::string::npos) {
      size_t open = pos + pre.size();
      size_t close = s.find('}', open);
      if (close == std::string::npos) break;
      std::string w = s.substr(open, close - open);
      std::string rep = function_names().count(w) ? "\\" + w + " " : "{" + w + "}";
      s.replace(pos, close + 1 - pos, rep);
      pos += rep.size();
    }
  }
  static const RE2 kPercentWord(R"(\s*\b(?:percentage|percent|pct)\b)");
  RE2::GlobalReplace(&s, kPercentWord, "%");
  // Trim spaces and trailing punctuation.
  auto trim = [](std::string& t) {
    while (!t.empty() && (t.back() == ' ' || t.back() == '.' || t.back() == ',' || t.back() == ';')) {
      t.pop_back();
    }
    while (t.size() >= 2 && t.compare(t.size() - 2, 2, "\\\\") == 0) {
      t.resize(t.size() - 2);
      while (!t.empty() && t.back() == ' ') t.pop_back();
    }
    size_t b = t.find_first_not_of(' ');
    t = b == std::string::npos ? "" : t.substr(b);
  };
  trim(s);
  return s;
}

enum class T { Num, Word, Cmd, Text, Begin, End, Op, Eof };
struct Tok {
  T type = T::Eof;
  std::string s;  // number text, word, command name (no backslash), op, text content, env
};

bool tokenize(const std::string& s, std::vector<Tok>& out) {
  size_t i = 0, n = s.size();
  while (i < n) {
    char c = s[i];
    if (c == ' ') {
      ++i;
      continue;
    }
    if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
      size_t j = i;
      while (j < n && is_digit(s[j])) ++j;
      if (j < n && s[j] == '.' && j + 1 < n && is_digit(s[j + 1])) {
        ++j;
        while (j < n && is_digit(s[j])) ++j;
      } else if (j < n && s[j] == '.' && (j + 1 == n || !is_letter(s[j + 1]))) {
        ++j;  // "3." is 3
      }
      // Scientific notation: 1.5e-3 / 2E5 (only with digits right after).
      if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < n && is_digit(s[k])) {
          while (k < n && is_digit(s[k])) ++k;
          j = k;
        }
      }
      out.push_back({T::Num, s.substr(i, j - i)});
      i = j;
      continue;
    }
    if (is_letter(c)) {
      size_t j = i;
      while (j < n && is_letter(s[j])) ++j;
      out.push_back({T::Word, s.substr(i, j - i)});
      i = j;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= n) return false;
      char d = s[i + 1];
      if (!is_letter(d)) {
        out.push_back({T::Cmd, std::string(1, d)});  // \{ \} \\ \|
        i += 2;
        continue;
      }
      size_t j = i + 1;
      while (j < n && is_letter(s[j])) ++j;
      std::string name = s.substr(i + 1, j - i - 1);
      if (name == "text" || name == "begin" || name == "end") {
        while (j < n && s[j] == ' ') ++j;
        if (j >= n || s[j] != '{') return false;
        int depth = 0;
        size_t k = j;
        for (; k < n; ++k) {
          if (s[k] == '{') ++depth;
          if (s[k] == '}' && --depth == 0) break;
        }
        if (k >= n) return false;
        std::string content = s.substr(j + 1, k - j - 1);
        T type = name == "text" ? T::Text : name == "begin" ? T::Begin : T::End;
        if (type != T::Text) {
          replace_all(content, "*", "");
        }
        out.push_back({type, content});
        i = k + 1;
        continue;
      }
      out.push_back({T::Cmd, name});
      i = j;
      continue;
    }
    if (i + 1 < n) {
      std::string two = s.substr(i, 2);
      if (two == "<=" || two == ">=" || two == "!=" || two == "==" || two == "=<" || two == "=>") {
        if (two == "==") two = "=";
        if (two == "=<") two = "<=";
        if (two == "=>") two = ">=";
        out.push_back({T::Op, two});
        i += 2;
        continue;
      }
    }
    if (std::string("+-*/^_()[]{},;|!=<>:%&'").find(c) != std::string::npos) {
      out.push_back({T::Op, std::string(1, c)});
      ++i;
      continue;
    }
    return false;  // any other character: not an expression we understand
  }
  out.push_back({T::Eof, ""});
  return true;
}

const std::set<std::string>& function_names() {
  static const std::set<std::string> k = {"sin",    "cos",    "tan",  "sec",  "csc",  "cot", "arcsin",
                                          "arccos", "arctan", "sinh", "cosh", "tanh", "ln",  "log",
                                          "exp",    "sqrt",   "asin", "acos", "atan"};
  return k;
}
const std::set<std::string>& greek_names() {
  static const std::set<std::string> k = {"alpha",  "beta",  "gamma",    "delta", "epsilon", "varepsilon", "zeta",
                                          "eta",    "theta", "vartheta", "iota",  "kappa",   "lambda",     "mu",
                                          "nu",     "xi",    "rho",      "sigma", "tau",     "upsilon",    "phi",
                                          "varphi", "chi",   "psi",      "omega", "Gamma",   "Delta",      "Theta",
                                          "Lambda", "Xi",    "Sigma",    "Phi",   "Psi",     "Omega",      "ell"};
  return k;
}
// Unit words dropped after a number ("35 cm", "5 hours"). Single letters are not here:
// "2x" must stay 2*x.
const std::set<std::string>& unit_words() {
  static const std::set<std::string> k = {
      "cm",    "mm",       "km",      "m",      "meter",   "meters", "metre",   "metres", "inch",    "inches",
      "ft",    "feet",     "foot",    "mile",   "miles",   "yard",   "yards",   "hour",   "hours",   "hr",
      "hrs",   "minute",   "minutes", "min",    "mins",    "second", "seconds", "day",    "days",    "week",
      "weeks", "year",     "years",   "dollar", "dollars", "cent",   "cents",   "degree", "degrees", "unit",
      "units", "sq",       "square",  "cubic",  "yuan",    "kg",     "gram",    "grams",  "pound",   "pounds",
      "lb",    "lbs",      "liter",   "liters", "litre",   "litres", "ml",      "mph",    "kmh",     "points",
      "point", "students", "people",  "times",  "ways",    "apples", "boxes",   "rad",    "radians", "euros",
      "euro",  "mi",       "oz",      "ounces", "gallons", "gallon", "sec",     "s"};
  return k;
}

NodePtr num_from_text(const std::string& text) {
  std::string t = text;
  if (!t.empty() && t.back() == '.') t.pop_back();
  bool is_float = t.find('.') != std::string::npos;
  bool sci = t.find_first_of("eE") != std::string::npos;
  return make_num(std::strtod(t.c_str(), nullptr), is_float || sci);
}

bool is_const_node(const Node& n) {
  switch (n.kind) {
    case Kind::Num:
      return true;
    case Kind::Sym:
      return n.name == "pi" || n.name == "inf" || n.name == "e";
    case Kind::Text:
    case Kind::Indexed:
    case Kind::Sum:
      return false;
    default:
      for (const auto& k : n.kids) {
        if (k && !is_const_node(*k)) return false;
      }
      return true;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Tok> toks) : toks_(std::move(toks)) {}

  NodePtr parse_top() {
    NodePtr n = parse_list(/*in_brackets=*/false);
    if (!n || peek().type != T::Eof) return nullptr;
    return n;
  }

 private:
  struct DepthGuard {
    int& d;
    explicit DepthGuard(int& depth) : d(depth) { ++d; }
    ~DepthGuard() { --d; }
  };

  const Tok& peek(size_t k = 0) const {
    size_t i = std::min(pos_ + k, toks_.size() - 1);
    return toks_[i];
  }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).type == T::Op && peek(k).s == op; }
  bool is_cmd(const char* name) const { return peek().type == T::Cmd && peek().s == name; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }

  bool is_separator_word() const {
    const Tok& t = peek();
    if (t.type == T::Word) return t.s == "and" || t.s == "or";
    if (t.type == T::Text) {
      std::string w;
      for (char c : t.s) {
        if (c != ' ' && c != ',') w += c;
      }
      return w == "and" || w == "or" || w.empty();
    }
    return false;
  }

  // a, b; c, d  -> List. In brackets ';' is a comma (0;0;0); at top level it groups.
  NodePtr parse_list(bool in_brackets) {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return nullptr;
    std::vector<NodePtr> groups, items;
    bool any_sep = false;
    while (true) {
      while (is_separator_word()) {
        advance();
        any_sep = true;
      }
      if (is_op(",") || is_op(";")) {  // ", ," or ", and" leaves an empty item: skip it
        if (is_op(";") && !in_brackets) {
          if (!items.empty()) groups.push_back(pack(items));
          items.clear();
        }
        advance();
        any_sep = true;
        continue;
      }
      if (at_list_end()) break;
      NodePtr item = parse_rel();
      if (!item) return nullptr;
      items.push_back(item);
      if (is_op(",") || is_separator_word()) {
        advance();
        any_sep = true;
        continue;
      }
      if (is_op(";")) {
        if (!in_brackets) {
          groups.push_back(pack(items));
          items.clear();
        }
        advance();
        any_sep = true;
        continue;
      }
      break;
    }
    if (!groups.empty()) {
      if (!items.empty()) groups.push_back(pack(items));
      return groups.size() == 1 ? groups[0] : make_node(Kind::List, groups);
    }
    if (items.empty()) return any_sep || in_brackets ? make_node(Kind::List, {}) : nullptr;
    return pack(items);
  }
  static NodePtr pack(const std::vector<NodePtr>& items) {
    return items.size() == 1 ? items[0] : make_node(Kind::List, items);
  }
  bool at_list_end() const {
    const Tok& t = peek();
    if (t.type == T::Eof || t.type == T::End) return true;
    if (t.type == T::Op && (t.s == ")" || t.s == "]" || t.s == "}" || t.s == "&")) return true;
    if (t.type == T::Cmd && (t.s == "}" || t.s == "\\")) return true;
    return false;
  }

  std::string rel_op() const {
    const Tok& t = peek();
    if (t.type == T::Op) {
      if (t.s == "=" || t.s == "<" || t.s == ">" || t.s == "<=" || t.s == ">=" || t.s == "!=") return t.s;
    }
    if (t.type == T::Cmd) {
      if (t.s == "le") return "<=";
      if (t.s == "ge") return ">=";
      if (t.s == "ne") return "!=";
      if (t.s == "in") return "in";
      if (t.s == "approx" || t.s == "simeq" || t.s == "sim" || t.s == "cong") return "~";
      if (t.s == "equiv") return "=";
    }
    return "";
  }

  NodePtr parse_rel() {
    NodePtr first = parse_ratio();
    if (!first) return nullptr;
    std::string op = rel_op();
    if (op.empty()) return first;
    auto rel = make_node(Kind::Rel, {first});
    while (!(op = rel_op()).empty()) {
      advance();
      NodePtr next = parse_ratio();
      if (!next) return nullptr;
      rel->ops.push_back(op);
      rel->kids.push_back(next);
    }
    return rel;
  }

  // a : b  (a ratio, or a time 12:00): an ordered pair named "ratio".
  NodePtr parse_ratio() {
    NodePtr first = parse_union();
    if (!first || !is_op(":")) return first;
    auto t = make_node(Kind::Tuple, {first}, "ratio");
    while (accept_op(":")) {
      NodePtr next = parse_union();
      if (!next) return nullptr;
      t->kids.push_back(next);
    }
    return t;
  }

  NodePtr parse_union() {
    NodePtr first = parse_additive();
    if (!first || !is_cmd("cup")) return first;
    auto u = make_node(Kind::Union, {first});
    while (is_cmd("cup")) {
      advance();
      NodePtr next = parse_additive();
      if (!next) return nullptr;
      u->kids.push_back(next);
    }
    return u;
  }

  NodePtr parse_additive() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return nullptr;
    NodePtr acc;
    if (is_cmd("pm")) {
      advance();
      NodePtr t = parse_term();
      if (!t) return nullptr;
      acc = make_node(Kind::PlusMinus, {nullptr, t});
    } else {
      acc = parse_term();
      if (!acc) return nullptr;
    }
    while (true) {
      if (is_op("+") || is_op("-")) {
        bool minus = peek().s == "-";
        advance();
        NodePtr t = parse_term();
        if (!t) return nullptr;
        if (minus) t = make_node(Kind::Neg, {t});
        if (acc->kind == Kind::Add) {
          acc->kids.push_back(t);
        } else {
          acc = make_node(Kind::Add, {acc, t});
        }
      } else if (is_cmd("pm")) {
        advance();
        NodePtr t = parse_term();
        if (!t) return nullptr;
        acc = make_node(Kind::PlusMinus, {acc, t});
      } else {
        break;
      }
    }
    return acc;
  }

  bool starts_atom() const {
    const Tok& t = peek();
    switch (t.type) {
      case T::Num:
      case T::Begin:
        return true;
      case T::Word:
        return t.s != "and" && t.s != "or";
      case T::Text:
        return !is_separator_word();
      case T::Cmd:
        return t.s == "frac" || t.s == "sqrt" || t.s == "pi" || t.s == "infty" || t.s == "{" || t.s == "binom" ||
               t.s == "sum" || t.s == "mathbb" || t.s == "emptyset" || t.s == "varnothing" || t.s == "|" ||
               function_names().count(t.s) || greek_names().count(t.s);
      case T::Op:
        return t.s == "(" || t.s == "{" || (t.s == "|" && abs_depth_ == 0);
      default:
        return false;
    }
  }

  static bool is_integer_num(const NodePtr& n) {
    return n && n->kind == Kind::Num && !n->is_float && n->num == std::floor(n->num);
  }
  static bool last_factor_is_number(const NodePtr& n) {
    if (!n) return false;
    if (n->kind == Kind::Num) return true;
    if ((n->kind == Kind::Mul || n->kind == Kind::Div) && !n->kids.empty())
      return last_factor_is_number(n->kids.back());
    return is_const_node(*n);
  }

  void skip_unit_power() {
    if (is_op("^")) {
      advance();
      if (accept_op("{")) {
        while (!is_op("}") && peek().type != T::Eof) advance();
        accept_op("}");
      } else {
        advance();
      }
    }
  }

  NodePtr parse_term() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return nullptr;
    NodePtr f = parse_factor();
    if (!f) return nullptr;
    while (true) {
      if (is_op("*") || is_cmd("cdot") || is_cmd("times") || is_cmd("ast")) {
        advance();
        NodePtr r = parse_factor();
        if (!r) return nullptr;
        f = make_node(Kind::Mul, {f, r});
      } else if (is_op("/") || is_cmd("div")) {
        advance();
        NodePtr r = parse_factor();
        if (!r) return nullptr;
        f = make_node(Kind::Div, {f, r});
      } else if (peek().type == T::Text && !is_separator_word()) {
        advance();  // a unit after a quantity: "15\text{ cm}^2"
        skip_unit_power();
      } else if (peek().type == T::Word && unit_words().count(peek().s) && last_factor_is_number(f)) {
        advance();
        skip_unit_power();
      } else if (starts_atom()) {
        // Mixed numbers: 2\frac{1}{2} and 7 3/4 mean 2 + 1/2 and 7 + 3/4.
        if (is_integer_num(f) && is_cmd("frac")) {
          NodePtr r = parse_factor();
          if (!r) return nullptr;
          if (r->kind == Kind::Div && is_integer_num(r->kids[0]) && is_integer_num(r->kids[1])) {
            f = make_node(Kind::Add, {f, r});
          } else {
            f = make_node(Kind::Mul, {f, r});
          }
          continue;
        }
        if (is_integer_num(f) && peek().type == T::Num && is_op("/", 1) && peek(2).type == T::Num) {
          NodePtr a = num_from_text(peek().s);
          NodePtr b = num_from_text(peek(2).s);
          advance();
          advance();
          advance();
          f = make_node(Kind::Add, {f, make_node(Kind::Div, {a, b})});
          continue;
        }
        NodePtr r = parse_factor();
        if (!r) return nullptr;
        if (f->kind == Kind::Mul) {
          f->kids.push_back(r);
        } else {
          f = make_node(Kind::Mul, {f, r});
        }
      } else {
        break;
      }
    }
    return f;
  }

  NodePtr parse_factor() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return nullptr;
    if (accept_op("-")) {
      NodePtr x = parse_factor();
      return x ? make_node(Kind::Neg, {x}) : nullptr;
    }
    if (accept_op("+")) return parse_factor();
    NodePtr base = parse_atom();
    if (!base) return nullptr;
    return parse_postfix(base);
  }

  NodePtr parse_postfix(NodePtr base) {
    while (true) {
      if (accept_op("^")) {
        NodePtr e = parse_exponent();
        if (!e) return nullptr;
        base = make_node(Kind::Pow, {base, e});
      } else if (is_op("!") && !is_op("=", 1)) {
        advance();
        base = make_node(Kind::Func, {base}, "fact");
      } else if (accept_op("%")) {
        base = make_node(Kind::Percent, {base});
      } else if (accept_op("'")) {
        if (base->kind == Kind::Sym) base->name += "'";
      } else {
        return base;
      }
    }
  }

  // The exponent / single argument of ^, _, \frac, \sqrt: a {group} or one token
  // (only its first digit or letter: x^23 is x^2 * 3 in LaTeX).
  NodePtr parse_exponent() {
    if (accept_op("{")) {
      NodePtr n = parse_list(true);
      if (!n || !accept_op("}")) return nullptr;
      return n;
    }
    if (accept_op("-")) {
      NodePtr x = parse_exponent();
      return x ? make_node(Kind::Neg, {x}) : nullptr;
    }
    return single_token_arg();
  }
  NodePtr single_token_arg() {
    Tok t = peek();
    if (t.type == T::Num) {
      if (t.s.size() > 1 && t.s.find('.') == std::string::npos) {
        toks_[pos_].s = t.s.substr(1);  // \frac94 -> 9, then 4 stays as the next token
        return num_from_text(t.s.substr(0, 1));
      }
      advance();
      return num_from_text(t.s);
    }
    if (t.type == T::Word) {
      if (t.s.size() > 1) {
        toks_[pos_].s = t.s.substr(1);
        return make_node(Kind::Sym, {}, t.s.substr(0, 1));
      }
      advance();
      return make_node(Kind::Sym, {}, t.s);
    }
    return parse_atom();
  }

  NodePtr group_arg() {
    if (accept_op("{")) {
      NodePtr n = parse_list(true);
      if (!n || !accept_op("}")) return nullptr;
      return n;
    }
    return single_token_arg();
  }

  // Subscript after a symbol: constant content becomes part of the name (a_{37} -> "a_37"),
  // anything else an Indexed node.
  NodePtr maybe_subscript(NodePtr sym) {
    if (!is_op("_")) return sym;
    advance();
    size_t start = pos_;
    NodePtr idx = group_arg();
    if (!idx) return nullptr;
    std::string flat;
    bool simple = true;
    for (size_t i = start; i < pos_; ++i) {
      const Tok& t = toks_[i];
      if (t.type == T::Num || t.type == T::Word) {
        flat += t.s;
      } else if (!(t.type == T::Op && (t.s == "{" || t.s == "}"))) {
        simple = false;
      }
    }
    if (simple) {
      sym->name += "_" + flat;
      return sym;
    }
    return make_node(Kind::Indexed, {idx}, sym->name);
  }

  NodePtr parse_function(std::string name) {
    if (name == "arcsin") name = "asin";
    if (name == "arccos") name = "acos";
    if (name == "arctan") name = "atan";
    NodePtr power;
    NodePtr log_base;
    if (name == "log" && accept_op("_")) {
      log_base = group_arg();
      if (!log_base) return nullptr;
    }
    if (accept_op("^")) {
      power = parse_exponent();
      if (!power) return nullptr;
      // \sin^{-1} x is arcsin x.
      if (power->kind == Kind::Neg && power->kids[0]->kind == Kind::Num && power->kids[0]->num == 1 &&
          (name == "sin" || name == "cos" || name == "tan")) {
        name = "a" + name;
        power = nullptr;
      }
    }
    NodePtr arg;
    if (is_op("(")) {
      arg = parse_atom();
    } else if (is_op("{")) {
      arg = group_arg();
    } else {
      // \sin 2x -> sin(2x); stops at the next function (2 \sin b \cos a).
      arg = parse_factor();
      while (arg && (peek().type == T::Num || (peek().type == T::Word && peek().s != "and" && peek().s != "or" &&
                                               !function_names().count(peek().s)))) {
        NodePtr r = parse_factor();
        if (!r) return nullptr;
        arg = make_node(Kind::Mul, {arg, r});
      }
    }
    if (!arg) return nullptr;
    NodePtr f = make_node(Kind::Func, {arg}, name);
    if (log_base) f = make_node(Kind::Div, {f, make_node(Kind::Func, {log_base}, "ln")});
    if (power) f = make_node(Kind::Pow, {f, power});
    return f;
  }

  NodePtr parse_bracket() {
    std::string open = peek().s;
    advance();
    NodePtr inner = parse_list(true);
    if (!inner) return nullptr;
    if (!(is_op(")") || is_op("]"))) return nullptr;
    std::string close = peek().s;
    advance();
    if (inner->kind == Kind::List) {
      if (inner->kids.size() == 2 && (open == "[" || close == "]")) {
        auto iv = make_node(Kind::Interval, inner->kids);
        iv->open_lo = open == "(";
        iv->open_hi = close == ")";
        return iv;
      }
      auto t = make_node(Kind::Tuple, inner->kids);
      t->open_lo = open == "(";
      t->open_hi = close == ")";
      return t;
    }
    if (open != "(" && open != "[") return nullptr;
    if ((open == "(") != (close == ")")) return nullptr;  // (x] is not a group
    return inner;
  }

  NodePtr parse_matrix(const std::string& env) {
    static const std::set<std::string> kEnvs = {"pmatrix",     "bmatrix", "matrix", "array",
                                                "smallmatrix", "Bmatrix", "vmatrix"};
    if (!kEnvs.count(env)) return nullptr;
    if (env == "array" && is_op("{")) {  // column spec {cc}
      while (!is_op("}") && peek().type != T::Eof) advance();
      advance();
    }
    std::vector<std::vector<NodePtr>> rows(1);
    while (true) {
      if (peek().type == T::End) {
        advance();
        break;
      }
      if (peek().type == T::Eof) return nullptr;
      if (accept_op("&")) continue;
      if (is_cmd("\\")) {
        advance();
        rows.emplace_back();
        continue;
      }
      NodePtr cell = parse_rel();
      if (!cell) return nullptr;
      rows.back().push_back(cell);
    }
    while (!rows.empty() && rows.back().empty()) rows.pop_back();
    if (rows.empty()) return nullptr;
    size_t cols = rows[0].size();
    auto m = make_node(Kind::Matrix, {});
    for (auto& r : rows) {
      if (r.size() != cols) return nullptr;
      for (auto& c : r) m->kids.push_back(c);
    }
    m->rows = static_cast<int>(rows.size());
    m->cols = static_cast<int>(cols);
    if (env == "vmatrix") return make_node(Kind::Func, {m}, "det");
    return m;
  }

  NodePtr parse_atom() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return nullptr;
    Tok t = peek();
    switch (t.type) {
      case T::Num: {
        advance();
        NodePtr n = num_from_text(t.s);
        if (is_op("_") && t.s.find('.') == std::string::npos) {  // 204_5: a base-5 numeral
          advance();
          NodePtr b = group_arg();
          if (!b || b->kind != Kind::Num) return nullptr;
          int base = static_cast<int>(b->num);
          if (base < 2 || base > 36) return nullptr;
          double v = 0;
          for (char c : t.s) {
            int d = c - '0';
            if (d >= base) return nullptr;
            v = v * base + d;
          }
          auto r = make_num(v);
          r->name = fmt::format("{}_{}", t.s, base);
          return r;
        }
        return n;
      }
      case T::Word: {
        advance();
        if (function_names().count(t.s) && (is_op("(") || is_op("^") || is_op("{"))) {
          return parse_function(t.s);
        }
        if (t.s == "pi") return make_node(Kind::Sym, {}, "pi");
        if (t.s == "inf" || t.s == "infty" || t.s == "infinity" || t.s == "oo") return make_node(Kind::Sym, {}, "inf");
        // "abc" is a*b*c (LaTeX italic letters); the last letter takes a subscript.
        std::vector<NodePtr> letters;
        for (char c : t.s) letters.push_back(make_node(Kind::Sym, {}, std::string(1, c)));
        letters.back() = maybe_subscript(letters.back());
        if (!letters.back()) return nullptr;
        if (letters.size() == 1) return letters[0];
        return make_node(Kind::Mul, letters);
      }
      case T::Text: {
        advance();
        std::string w;
        for (char c : t.s) {
          if (c != ' ') w += c;
        }
        return make_node(Kind::Text, {}, w);
      }
      case T::Begin: {
        advance();
        return parse_matrix(t.s);
      }
      case T::Cmd: {
        const std::string& c = t.s;
        advance();
        if (c == "frac") {
          NodePtr a = group_arg();
          if (!a) return nullptr;
          NodePtr b = group_arg();
          if (!b) return nullptr;
          return make_node(Kind::Div, {a, b});
        }
        if (c == "binom") {
          NodePtr a = group_arg();
          if (!a) return nullptr;
          NodePtr b = group_arg();
          if (!b) return nullptr;
          return make_node(Kind::Func, {a, b}, "binom");
        }
        if (c == "sqrt") {
          NodePtr index;
          if (accept_op("[")) {
            index = parse_additive();
            if (!index || !accept_op("]")) return nullptr;
          }
          NodePtr a = group_arg();
          if (!a) return nullptr;
          if (index) return make_node(Kind::Pow, {a, make_node(Kind::Div, {make_num(1), index})});
          return make_node(Kind::Func, {a}, "sqrt");
        }
        if (c == "pi") return make_node(Kind::Sym, {}, "pi");
        if (c == "infty") return make_node(Kind::Sym, {}, "inf");
        if (c == "emptyset" || c == "varnothing") return make_node(Kind::Set, {});
        if (c == "mathbb") {
          NodePtr a = group_arg();
          if (!a || a->kind != Kind::Sym || a->name != "R") return nullptr;
          auto iv = make_node(Kind::Interval, {make_node(Kind::Neg, {make_node(Kind::Sym, {}, "inf")}),
                                               make_node(Kind::Sym, {}, "inf")});
          iv->open_lo = iv->open_hi = true;
          return iv;
        }
        if (c == "{") {
          NodePtr inner = parse_list(true);
          if (!inner || !is_cmd("}")) return nullptr;
          advance();
          if (inner->kind == Kind::List) {
            inner->kind = Kind::Set;
            return inner;
          }
          return make_node(Kind::Set, {inner});
        }
        if (c == "|") {
          ++abs_depth_;
          NodePtr inner = parse_additive();
          --abs_depth_;
          if (!inner || !is_cmd("|")) return nullptr;
          advance();
          return make_node(Kind::Func, {inner}, "abs");
        }
        if (c == "sum") {
          if (!accept_op("_") || !accept_op("{") || peek().type != T::Word) return nullptr;
          std::string var = peek().s;
          advance();
          if (!accept_op("=")) return nullptr;
          NodePtr lo = parse_additive();
          if (!lo || !accept_op("}") || !accept_op("^")) return nullptr;
          NodePtr hi = parse_exponent();
          if (!hi) return nullptr;
          NodePtr body = parse_term();
          if (!body) return nullptr;
          return make_node(Kind::Sum, {lo, hi, body}, var);
        }
        if (function_names().count(c)) return parse_function(c);
        if (greek_names().count(c)) return maybe_subscript(make_node(Kind::Sym, {}, c));
        // Any other command in a value position is an opaque symbol (\zzz, \ell, \hbar).
        static const std::set<std::string> kNotValues = {"cup", "cap",  "setminus", "to",  "in", "le", "ge",    "ne",
                                                         "pm",  "cdot", "times",    "div", "\\", "}",  "right", "end"};
        if (kNotValues.count(c)) return nullptr;
        return make_node(Kind::Sym, {}, "\\" + c);
      }
      case T::Op: {
        if (t.s == "(" || t.s == "[") return parse_bracket();
        if (t.s == "{") {
          advance();
          NodePtr inner = parse_list(true);
          if (!inner || !accept_op("}")) return nullptr;
          return inner;  // {1,3}: a bare List
        }
        if (t.s == "|") {
          advance();
          ++abs_depth_;
          NodePtr inner = parse_additive();
          --abs_depth_;
          if (!inner || !accept_op("|")) return nullptr;
          return make_node(Kind::Func, {inner}, "abs");
        }
        return nullptr;
      }
      default:
        return nullptr;
    }
  }

  std::vector<Tok> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int abs_depth_ = 0;
};

// Plain-text numbers: "1,000.99", "1 000", decimal comma "1,22" / "0,111".
bool plain_number(const std::string& s, bool plain, std::string& out) {
  static const RE2 kThousands(R"(^([-+]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?)$)");
  static const RE2 kSpaceThousands(R"(^([-+]?)(\d{1,3}(?: \d{3})+(?:\.\d+)?)$)");
  static const RE2 kDecimalComma(R"(^([-+]?)(\d+),(\d{1,2}|\d{4,})$)");
  static const RE2 kZeroComma(R"(^([-+]?)(0,\d+)$)");
  std::string sign, body, frac;
  if (plain && RE2::FullMatch(s, kZeroComma, &sign, &body)) {
    replace_all(body, ",", ".");
    out = sign + body;
    return true;
  }
  if (RE2::FullMatch(s, kThousands, &sign, &body)) {
    replace_all(body, ",", "");
    out = sign + body;
    return true;
  }
  if (!plain) return false;
  if (RE2::FullMatch(s, kSpaceThousands, &sign, &body)) {
    replace_all(body, " ", "");
    out = sign + body;
    return true;
  }
  if (RE2::FullMatch(s, kDecimalComma, &sign, &body, &frac)) {
    out = sign + body + "." + frac;
    return true;
  }
  if (RE2::FullMatch(s, kZeroComma, &sign, &body)) {
    replace_all(body, ",", ".");
    out = sign + body;
    return true;
  }
  return false;
}

}  // namespace

NodePtr make_num(double v, bool is_float) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Num;
  n->num = v;
  n->is_float = is_float;
  return n;
}

NodePtr make_node(Kind kind, std::vector<NodePtr> kids, std::string name) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->kids = std::move(kids);
  n->name = std::move(name);
  return n;
}

NodePtr parse_math(std::string_view text, const ParseOptions& options) {
  if (text.size() > kMaxChars) return nullptr;
  std::string s = normalize_latex(std::string(text));
  if (s.empty()) return nullptr;
  std::string num;
  if (plain_number(s, options.plain_text, num)) s = num;
  // "x \approx 11" / "= 1/3 \approx 0.33": what follows an approximation is not the answer.
  // "= 1/3 \\approx 0.33": the approximation after an exact value is not the answer; a lone
  // "x \\approx 11" is read as "x = 11".
  size_t approx = s.find("\\approx");
  if (approx != std::string::npos && approx > 0) {
    if (s.substr(0, approx).find('=') != std::string::npos) {
      s = s.substr(0, approx);
    } else {
      s.replace(approx, 7, "=");
    }
  }
  std::vector<Tok> toks;
  if (!tokenize(s, toks)) return nullptr;
  Parser p(std::move(toks));
  return p.parse_top();
}

std::string to_string(const Node& n) {
  auto kids = [&](const char* sep) {
    std::string out;
    for (size_t i = 0; i < n.kids.size(); ++i) {
      if (i) out += sep;
      out += n.kids[i] ? to_string(*n.kids[i]) : "_";
    }
    return out;
  };
  switch (n.kind) {
    case Kind::Num:
      return n.name.empty() ? fmt::format("{}", n.num) : n.name;
    case Kind::Sym:
      return n.name;
    case Kind::Text:
      return "\"" + n.name + "\"";
    case Kind::Add:
      return "(" + kids(" + ") + ")";
    case Kind::Mul:
      return "(" + kids(" * ") + ")";
    case Kind::Div:
      return "(" + kids(" / ") + ")";
    case Kind::Neg:
      return "-" + kids("");
    case Kind::Pow:
      return "(" + kids(" ^ ") + ")";
    case Kind::Func:
      return n.name + "(" + kids(", ") + ")";
    case Kind::Indexed:
      return n.name + "_[" + kids("") + "]";
    case Kind::Sum:
      return "sum_" + n.name + "(" + kids(", ") + ")";
    case Kind::Percent:
      return kids("") + "%";
    case Kind::PlusMinus:
      return "(" + kids(" +- ") + ")";
    case Kind::Tuple:
      return (n.name == "ratio" ? "ratio" : "") + std::string(n.open_lo ? "(" : "[") + kids(", ") +
             (n.open_hi ? ")" : "]");
    case Kind::List:
      return "list{" + kids(", ") + "}";
    case Kind::Set:
      return "set{" + kids(", ") + "}";
    case Kind::Interval:
      return std::string("I") + (n.open_lo ? "(" : "[") + kids(", ") + (n.open_hi ? ")" : "]");
    case Kind::Union:
      return kids(" U ");
    case Kind::Matrix:
      return fmt::format("M{}x{}[{}]", n.rows, n.cols, kids(", "));
    case Kind::Rel: {
      std::string out = to_string(*n.kids[0]);
      for (size_t i = 0; i < n.ops.size(); ++i) out += " " + n.ops[i] + " " + to_string(*n.kids[i + 1]);
      return out;
    }
  }
  return "?";
}

}  // namespace r1kit::rewards::math
