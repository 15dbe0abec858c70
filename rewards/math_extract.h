// Where is the final answer in a completion (or a gold solution)?
//
// Order, first hit wins (Math-Verify's priority ladder, reference/rewards.md §1.1, plus
// R1's <answer> tags): <answer>...</answer> (then searched again inside); the last
// \boxed{} / \fbox{} (adjacent boxes joined by ",", "and", "or" form one list) or
// "final answer is X. I hope", whichever is later; "Final Answer: ... is X"; "the answer
// is X" / "answer: X"; then, unanchored, the last math environment ($..$, $$..$$, \(..\),
// \[..\]) or the last plain number, whichever ends later. The number fallback is an
// option (off in strict recipes: a model then cannot be rewarded for a stray number).
// A percent sign written after a box or number ("\boxed{28} pct") is kept.
// Gold answers: GSM8K "#### 1,200", a MATH solution with \boxed{}, or the answer as is.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit::rewards::math {

struct ExtractOptions {
  bool answer_tags = true;  // <answer>...</answer>
  bool boxed = true;        // \boxed{} / \fbox{}
  bool anchors = true;      // "final answer is", "the answer is", "Answer:"
  bool math_env = true;     // unanchored last $...$ / \[...\] / \(...\)
  bool last_number = true;  // unanchored last number
};

struct Extracted {
  std::string text;    // the answer text (LaTeX or plain)
  bool plain = false;  // plain text: decimal commas / "1 000" allowed when parsing
  std::string how;     // "boxed", "answer tag", "anchor", "math", "number", "whole"
};

std::optional<Extracted> extract_answer(std::string_view text, const ExtractOptions& options = {});
std::optional<Extracted> extract_gold(std::string_view gold);

// Contents of every \boxed{...} / \fbox{...} (brace-matched), in order.
std::vector<std::string> find_boxed(std::string_view text);

// Multiple choice: the letter (from `letters`) a completion commits to, or "".
std::string extract_choice(std::string_view text, std::string_view letters = "ABCDEFGHIJ");

}  // namespace r1kit::rewards::math
