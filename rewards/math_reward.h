// The `math` reward: 1 when the completion's final answer equals the row's gold answer,
// 0 when it does not, skip when the row has no gold answer.
//
// Gold: row[answer_field] (default "answer"), read as GSM8K ("#### 1,200"), as a MATH
// solution (its last \boxed{}), or as the answer itself; a gold that is a single letter
// (A-J, "(C)") switches to multiple-choice extraction. Prediction: math_extract's ladder.
// Both are parsed (math_parse) and compared (math_equal); when either does not parse, the
// normalised strings are compared (lower case, no spaces, no \text / $ / trailing dot).
// Options (recipe): answer_field, fallback_last_number, answer_tags, float_rounding,
// rel_tol, strict, allow_set_relation, percent_lenient, timeout_s.
#pragma once
#include <string>
#include <string_view>

#include "rewards/math_equal.h"
#include "rewards/math_extract.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

struct MathOptions {
  std::string answer_field = "answer";  // row key holding the gold answer / solution
  math::ExtractOptions extract;         // how the prediction is found
  math::EqualOptions equal;             // how it is compared
};

struct MathCheck {
  bool correct = false;
  bool gold_found = false;
  std::string gold;  // the extracted gold answer
  std::string pred;  // the extracted predicted answer ("" when none)
  std::string why;   // one line
};

// Extract both sides, then compare. Thread-safe, no allocation beyond the strings.
MathCheck check_math_answer(std::string_view gold_solution, std::string_view completion,
                            const MathOptions& options = {});

// Normalised-string equality, the last resort when an answer does not parse.
bool strings_equal_normalized(std::string_view a, std::string_view b);

MathOptions parse_math_options(JsonFields& fields);

}  // namespace r1kit::rewards
