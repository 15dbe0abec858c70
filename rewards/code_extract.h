// The program in a completion: the last fenced code block (```python ... ```), preferring
// blocks tagged with the wanted language or untagged ones. Text after </think> only, when
// the completion has a think section. Without any fence, the whole text when
// `allow_unfenced` (HumanEval-style raw completions), else nothing.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace r1kit::rewards {

std::optional<std::string> extract_code(std::string_view completion, std::string_view language = "python",
                                        bool allow_unfenced = true);

}  // namespace r1kit::rewards
