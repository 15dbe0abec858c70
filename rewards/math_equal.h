// Is a predicted answer the same as the gold answer? Numeric, symbolic and structural
// equivalence over math_parse trees, with no CAS.
//
// - Numbers: equal within a relative tolerance; when either side was written as a decimal,
//   also equal after rounding both to `float_rounding` places (Math-Verify's rule, so
//   1/12 == 0.083333). Percentages: 28% == 0.28, and (percent_lenient) == 28.
// - Expressions with variables: evaluated at random points (complex arithmetic, the same
//   points on both sides); equal when every point agrees. Identities a CAS would prove
//   (tan^2+1 == sec^2) pass; expressions equal only on a measure-zero set do not.
// - Tuples are ordered; bare lists and sets unordered; intervals compare ends and
//   open/closed; unions part by part; matrices element-wise (after + and * are applied).
// - Relations: `x = 3` vs `3` takes the right side; equations equal up to a non-zero factor;
//   inequalities up to a positive factor (so -x > -1 == x < 1); a gold inequality vs a
//   predicted interval compares the sets (not the other way unless allow_set_relation).
// - \text{} words compare case-insensitively with letters ("\text{odd}" == "odd").
// Deliberate deviations from Math-Verify are listed in tests/fixtures/mathverify_disagreements.jsonl.
#pragma once
#include <string>
#include <string_view>

#include "rewards/math_parse.h"

namespace r1kit::rewards::math {

struct EqualOptions {
  int float_rounding = 6;           // decimal places when a side has a decimal literal; <0: off
  double rel_tol = 1e-9;            // relative tolerance for values without variables
  double symbolic_rel_tol = 1e-6;   // relative tolerance at random points
  bool strict = true;               // false: f(x) == f(y) (variables renamed in order)
  bool allow_set_relation = false;  // gold interval vs predicted inequality
  bool percent_lenient = true;      // 28% == 28 as well as 0.28
  int points = 6;                   // random points for expressions with variables
};

bool math_equal(const NodePtr& gold, const NodePtr& pred, const EqualOptions& options = {});

}  // namespace r1kit::rewards::math
