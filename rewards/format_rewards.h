// Format rewards (no answer checking): the R1-Zero template, tag counting, length with
// DAPO's soft overlong penalty, R1's language consistency, and an n-gram repetition penalty.
//
// - format: 1 when the completion is exactly <think>...</think> then <answer>...</answer>
//   (whitespace allowed around them, one of each tag, nothing else outside), else 0
//   (DeepSeek-R1 §2.2.2). think_in_prompt: the template put "<think>" in the prompt.
// - tag_count: 0.25 per tag that appears exactly once (open-r1's partial credit).
// - length: DAPO eq. 13: 0 up to max_length - cache_length, then a linear ramp down to -1
//   at max_length, -1 beyond. Length in characters, whitespace words, or a row field.
// - language: share of letters in the chain of thought (<think> content, else the whole
//   completion) that are in the target script (R1 §2.3.2); math and LaTeX commands are
//   not counted. target "auto" = the prompt's main script.
// - repetition: -(1 - distinct n-grams / n-grams) * max_penalty over whitespace words.
#pragma once
#include <string>
#include <string_view>

namespace r1kit::rewards {

double format_score(std::string_view completion, bool think_in_prompt);
double tag_count_score(std::string_view completion);
double overlong_penalty(double length, double max_length, double cache_length);
// Share of letters in `script` ("latin", "han", "cyrillic", "arabic", "hangul", "kana",
// "greek", "devanagari") among all counted letters; 1 when there are none.
double script_share(std::string_view text, const std::string& script);
// The script with the most letters in `text` ("latin" when it has none).
std::string dominant_script(std::string_view text);
double repetition_penalty(std::string_view text, int ngram, double max_penalty);

}  // namespace r1kit::rewards
