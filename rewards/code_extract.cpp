// Code extraction (see code_extract.h).
#include "rewards/code_extract.h"

#include <cctype>
#include <vector>

namespace r1kit::rewards {

std::optional<std::string> extract_code(std::string_view text, std::string_view language, bool allow_unfenced) {
  size_t think_end = text.rfind("</think>");
  if (think_end != std::string_view::npos) text = text.substr(think_end + 8);
  struct Block {
    std::string lang, code;
  };
  std::vector<Block> blocks;
  size_t pos = 0;
  while ((pos = text.find("```", pos)) != std::string_view::npos) {
    size_t eol = text.find('\n', pos + 3);
    if (eol == std::string_view::npos) break;
    std::string lang(text.substr(pos + 3, eol - pos - 3));
    while (!lang.empty() && std::isspace(static_cast<unsigned char>(lang.back()))) lang.pop_back();
    size_t close = text.find("```", eol + 1);
    if (close == std::string_view::npos) break;  // unclosed: the model ran out of tokens
    blocks.push_back({lang, std::string(text.substr(eol + 1, close - eol - 1))});
    pos = close + 3;
  }
  auto wanted = [&](const std::string& lang) {
    if (lang.empty()) return true;
    std::string l;
    for (char c : lang) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (language == "python") return l == "python" || l == "py" || l == "python3";
    return l == language;
  };
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    if (wanted(it->lang)) return it->code;
  if (!blocks.empty()) return std::nullopt;  // only blocks in another language
  if (!allow_unfenced) return std::nullopt;
  std::string whole(text);
  size_t a = whole.find("<answer>");
  if (a != std::string::npos) {
    size_t b = whole.find("</answer>", a);
    whole = whole.substr(a + 8, b == std::string::npos ? std::string::npos : b - a - 8);
  }
  bool blank = true;
  for (char c : whole)
    if (!std::isspace(static_cast<unsigned char>(c))) blank = false;
  if (blank) return std::nullopt;
  return whole;
}

}  // namespace r1kit::rewards
