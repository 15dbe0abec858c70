// LaTeX / plain-text answer -> expression tree (no CAS).
//
// Handles what final answers are written with: numbers (thousands separators, decimal
// commas in plain text, scientific notation, bases like 204_5, percentages, degrees),
// \frac/\dfrac/\tfrac/\cfrac (also malformed \frac13), \sqrt[n]{}, powers, \pi, \infty,
// \cdot/\times/\div, implicit multiplication, trig/log functions, |x|, n!, \binom, \sum,
// \left/\right, \text{} (a unit after a number is dropped; alone it is a word), tuples,
// sets, intervals, unions, matrices (pmatrix/bmatrix/array), relations and chains
// (=, <, \le, \ne, \in, \approx), and \pm (kept as a node, expanded by the comparer).
// Does not: simplify. Equality is decided by math_equal (evaluation at points), so the
// tree stays close to what was written. Parsing is bounded (length and depth caps).
// Reference: the normalisation lists of Hendrycks' MATH / Minerva (reference/rewards.md
// §2.3) and Math-Verify's latex2sympy normalisation (§1.1), re-implemented.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit::rewards::math {

enum class Kind {
  Num,        // num (is_float when written with a decimal point)
  Sym,        // name (a letter, a greek name, a subscripted name "a_3", "pi", "inf", "e")
  Text,       // name = the words of a \text{} that is the whole answer
  Add,        // kids summed
  Mul,        // kids multiplied
  Div,        // kids[0] / kids[1]
  Neg,        // -kids[0]
  Pow,        // kids[0] ^ kids[1]
  Func,       // name(kids...): sin cos tan sec csc cot asin acos atan sinh cosh tanh ln log exp sqrt abs fact binom
  Indexed,    // name_{kids[0]} with a non-constant index (F_{n-k-1}): a pseudo-random function
  Sum,        // \sum_{name=kids[0]}^{kids[1]} kids[2]
  Percent,    // kids[0] %  (value kids[0]/100)
  PlusMinus,  // kids[0] \pm kids[1] (kids[0] may be null for a leading \pm)
  Tuple,      // (a, b, ...): ordered; open_lo/open_hi say '(' / ')' so (a,b) can act as an interval
  List,       // a, b, c   (bare list or {a,b}): unordered
  Set,        // \{a, b\}: unordered
  Interval,   // [a, b), (a, b], [a, b]: open_lo / open_hi
  Union,      // kids joined by \cup
  Matrix,     // rows x cols, kids row-major
  Rel,        // chain kids[0] ops[0] kids[1] ops[1] kids[2] ...; ops: = < <= > >= != in ~
};

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Node {
  Kind kind = Kind::Num;
  double num = 0;
  bool is_float = false;
  std::string name;
  std::vector<NodePtr> kids;
  std::vector<std::string> ops;  // Rel only
  bool open_lo = false, open_hi = false;
  int rows = 0, cols = 0;
};

NodePtr make_num(double v, bool is_float = false);
NodePtr make_node(Kind kind, std::vector<NodePtr> kids, std::string name = "");

struct ParseOptions {
  // Plain text (not LaTeX): "1,22" is a decimal comma, "1 000" a thousands group.
  bool plain_text = false;
};

// nullptr when the text is not an expression this parser understands.
NodePtr parse_math(std::string_view text, const ParseOptions& options = {});

// Canonical one-line print (used for exact structural equality and for "why" strings).
std::string to_string(const Node& node);

}  // namespace r1kit::rewards::math
