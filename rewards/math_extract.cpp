// Final-answer extraction (see math_extract.h).
#include "rewards/math_extract.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

namespace r1kit::rewards::math {
namespace {

struct Span {
  size_t begin = 0, end = 0;  // of the whole match in the text
  std::string content;
};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<Span> boxed_spans(std::string_view text) {
  std::vector<Span> out;
  for (std::string_view key : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    size_t pos = 0;
    while ((pos = text.find(key, pos)) != std::string_view::npos) {
      size_t i = pos + key.size();
      while (i < text.size() && text[i] == ' ') ++i;
      if (i >= text.size() || text[i] != '{') {
        // \boxed 5 (no braces): one token
        size_t j = i;
        while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) && text[j] != '$') ++j;
        if (j > i) out.push_back({pos, j, std::string(text.substr(i, j - i))});
        pos = i;
        continue;
      }
      int depth = 0;
      size_t j = i;
      for (; j < text.size(); ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) {
          ++j;
          continue;
        }
        if (text[j] == '{') ++depth;
        if (text[j] == '}' && --depth == 0) break;
      }
      if (j >= text.size()) break;  // unclosed: not an answer
      out.push_back({pos, j + 1, std::string(text.substr(i + 1, j - i - 1))});
      pos = j + 1;
    }
  }
  std::sort(out.begin(), out.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  return out;
}

// $$..$$, $..$ (one line), \[..\], \(..\) (one line), in order.
std::vector<Span> math_spans(std::string_view t) {
  std::vector<Span> out;
  size_t i = 0;
  while (i < t.size()) {
    if (t[i] == '\\' && i + 1 < t.size() && (t[i + 1] == '[' || t[i + 1] == '(')) {
      std::string_view close = t[i + 1] == '[' ? "\\]" : "\\)";
      size_t j = t.find(close, i + 2);
      if (j == std::string_view::npos) break;
      std::string_view inner = t.substr(i + 2, j - i - 2);
      if (close == "\\)" && inner.find('\n') != std::string_view::npos) {
        i += 2;
        continue;
      }
      out.push_back({i, j + 2, std::string(inner)});
      i = j + 2;
      continue;
    }
    if (t[i] == '\\' && i + 1 < t.size()) {
      i += 2;
      continue;
    }
    if (t[i] == '$') {
      bool dbl = i + 1 < t.size() && t[i + 1] == '$';
      size_t start = i + (dbl ? 2 : 1);
      size_t j = start;
      bool found = false;
      for (; j < t.size(); ++j) {
        if (t[j] == '\\') {
          ++j;
          continue;
        }
        if (!dbl && t[j] == '\n') break;
        if (t[j] == '$') {
          if (dbl && !(j + 1 < t.size() && t[j + 1] == '$')) continue;
          found = true;
          break;
        }
      }
      if (!found) {
        i = start;
        continue;
      }
      out.push_back({i, j + (dbl ? 2 : 1), std::string(t.substr(start, j - start))});
      i = j + (dbl ? 2 : 1);
      continue;
    }
    ++i;
  }
  return out;
}

// Text between two answers that still means "these belong together": punctuation and
// spacing only, or a short phrase with "and" / "or" ("\quad \text{and} \quad").
bool joins(std::string_view between) {
  std::string s(between);
  for (std::string_view cmd : {"\\quad", "\\qquad", "\\text", "\\(", "\\)", "\\[", "\\]", "\\,", "\\ "}) {
    size_t pos;
    while ((pos = s.find(cmd)) != std::string::npos) s.replace(pos, cmd.size(), " ");
  }
  int words = 0, letters_or_digits = 0;
  bool and_or = false;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    ++words;
    std::string w = lower(word);
    if (w == "and" || w == "or") and_or = true;
    word.clear();
  };
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += c;
      ++letters_or_digits;
    } else {
      flush();
    }
  }
  flush();
  if (letters_or_digits == 0) return s.size() <= 40;
  return and_or && words <= 5;
}

// The last span and those before it that join it.
std::optional<Span> last_group(const std::vector<Span>& spans, std::string_view text) {
  if (spans.empty()) return std::nullopt;
  size_t k = spans.size() - 1;
  while (k > 0 && spans[k - 1].end <= spans[k].begin &&
         joins(text.substr(spans[k - 1].end, spans[k].begin - spans[k - 1].end))) {
    --k;
  }
  Span out = spans.back();
  if (k + 1 < spans.size()) {
    out.begin = spans[k].begin;
    out.content.clear();
    for (size_t i = k; i < spans.size(); ++i) {
      if (i > k) out.content += ", ";
      out.content += spans[i].content;
    }
  }
  return out;
}

// The last plain number: "1,000.99", "2/3", "-5", ".4", "2,74" (not inside a word: "AZYUK2A").
std::optional<Span> last_number(std::string_view t) {
  std::optional<Span> best;
  size_t i = 0;
  while (i < t.size()) {
    bool starts = std::isdigit(static_cast<unsigned char>(t[i])) ||
                  (t[i] == '.' && i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i + 1])));
    if (!starts) {
      ++i;
      continue;
    }
    size_t b = i;
    if (b > 0 && std::isalpha(static_cast<unsigned char>(t[b - 1]))) {
      // Part of a name ("x2", "v.2"): skip it. At least one character, or "x.5" (a number
      // that starts with the dot) would never advance.
      do {
        ++i;
      } while (i < t.size() && std::isalnum(static_cast<unsigned char>(t[i])));
      continue;
    }
    size_t j = i;
    while (j < t.size()) {
      char c = t[j];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++j;
      } else if ((c == ',' || c == '.' || c == '/') && j + 1 < t.size() &&
                 std::isdigit(static_cast<unsigned char>(t[j + 1]))) {
        ++j;
      } else if (c == ' ' && j + 3 < t.size() && std::isdigit(static_cast<unsigned char>(t[j + 1])) &&
                 std::isdigit(static_cast<unsigned char>(t[j + 2])) &&
                 std::isdigit(static_cast<unsigned char>(t[j + 3])) &&
                 (j + 4 == t.size() || !std::isalnum(static_cast<unsigned char>(t[j + 4])))) {
        j += 4;  // "1 000"
      } else {
        break;
      }
    }
    if (b > 0 && t[b - 1] == '-') --b;
    best = Span{b, j, std::string(t.substr(b, j - b))};
    i = j;
  }
  return best;
}

std::string percent_suffix(std::string_view text, size_t end) {
  static const RE2 kPct(R"(^\s*\$?\s*(\\%|%|percentage|percent|pct)\b?)");
  re2::StringPiece rest(text.data() + end, text.size() - end);
  if (RE2::PartialMatch(rest, kPct)) return "%";
  return "";
}

// The answer at the start of an anchored phrase: a math environment (with the ones
// joined to it), else the sentence up to its end, else its last number.
std::optional<Extracted> leading_answer(std::string_view seg) {
  std::string s = trim(seg);
  if (s.empty()) return std::nullopt;
  auto spans = math_spans(s);
  if (!spans.empty() && trim(std::string_view(s).substr(0, spans[0].begin)).size() <= 2) {
    size_t k = 0;
    std::string content = spans[0].content;
    while (k + 1 < spans.size() && joins(std::string_view(s).substr(spans[k].end, spans[k + 1].begin - spans[k].end))) {
      ++k;
      content += ", " + spans[k].content;
    }
    return Extracted{content + percent_suffix(s, spans[k].end), false, "anchor"};
  }
  // Up to the end of the sentence.
  size_t stop = s.size();
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && (s[i + 1] == ' ' || s[i + 1] == '\n')) {
      stop = i;
      break;
    }
  }
  std::string sentence = trim(std::string_view(s).substr(0, stop));
  while (!sentence.empty() && (sentence.back() == '.' || sentence.back() == ',')) sentence.pop_back();
  if (!sentence.empty() && sentence.size() <= 80 && sentence.find(' ') == std::string::npos)
    return Extracted{sentence, true, "anchor"};
  if (!spans.empty()) return Extracted{spans.back().content, false, "anchor"};
  if (auto n = last_number(sentence)) return Extracted{n->content + percent_suffix(sentence, n->end), true, "anchor"};
  if (!sentence.empty() && sentence.size() <= 80) return Extracted{sentence, true, "anchor"};
  return std::nullopt;
}

std::string cut_hope(std::string_view line) {
  std::string l(line);
  std::string low = lower(l);
  size_t h = low.find("i hope");
  if (h != std::string::npos) l = l.substr(0, h);
  return l;
}

struct Candidate {
  int priority;
  size_t end;
  Extracted value;
};

}  // namespace

std::vector<std::string> find_boxed(std::string_view text) {
  std::vector<std::string> out;
  for (auto& s : boxed_spans(text)) out.push_back(s.content);
  return out;
}

std::optional<Extracted> extract_answer(std::string_view text, const ExtractOptions& o) {
  if (o.answer_tags) {
    size_t open = text.rfind("<answer>");
    if (open != std::string_view::npos) {
      size_t start = open + 8;
      size_t close = text.find("</answer>", start);
      std::string_view inner =
          text.substr(start, close == std::string_view::npos ? std::string_view::npos : close - start);
      ExtractOptions inner_o = o;
      inner_o.answer_tags = false;
      inner_o.last_number = false;
      if (auto e = extract_answer(inner, inner_o)) return e;
      std::string t = trim(inner);
      if (!t.empty() && t.size() <= 200) return Extracted{t, true, "answer tag"};
    }
  }
  std::vector<Candidate> cands;
  if (o.boxed) {
    if (auto g = last_group(boxed_spans(text), text)) {
      cands.push_back({0, g->end, {g->content + percent_suffix(text, g->end), false, "boxed"}});
    }
  }
  if (o.anchors) {
    std::string low = lower(text);
    // "final answer is X. I hope" (Minerva) and "Final Answer: ... is X".
    size_t fa = low.rfind("final answer");
    if (fa != std::string::npos) {
      size_t eol = low.find('\n', fa);
      std::string line = cut_hope(text.substr(fa + 12, eol == std::string::npos ? std::string::npos : eol - fa - 12));
      std::string line_low = lower(line);
      bool hope = low.find("i hope", fa) != std::string::npos;
      size_t is = std::string::npos;
      for (size_t p = line_low.find(" is "); p != std::string::npos; p = line_low.find(" is ", p + 1)) is = p;
      std::string seg;
      if (line_low.rfind(" is", 0) == 0 || line_low.rfind(" is:", 0) == 0) {
        seg = line.substr(3);
      } else if (is != std::string::npos) {
        seg = line.substr(is + 4);
      } else {
        size_t colon = line.find(':');
        seg = colon != std::string::npos ? line.substr(colon + 1) : line;
      }
      if (!seg.empty() && seg[0] == ':') seg = seg.substr(1);
      if (auto a = leading_answer(seg))
        cands.push_back({hope && is != std::string::npos ? 0 : 1, fa + 12 + line.size(), *a});
    } else {
      static const RE2 kAnswerIs(R"((?i)(?:the answer is|answer is|answer:)\s*)");
      re2::StringPiece in(text.data(), text.size());
      re2::StringPiece m;
      size_t last_end = std::string::npos;
      size_t pos = 0;
      while (pos <= text.size() && kAnswerIs.Match(in, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
        last_end = static_cast<size_t>(m.data() - text.data()) + m.size();
        pos = last_end;
        if (m.size() == 0) ++pos;
      }
      if (last_end != std::string::npos) {
        size_t eol = text.find('\n', last_end);
        std::string seg =
            cut_hope(text.substr(last_end, eol == std::string::npos ? std::string::npos : eol - last_end));
        if (auto a = leading_answer(seg)) cands.push_back({2, last_end + seg.size(), *a});
      }
    }
  }
  if (o.math_env) {
    if (auto g = last_group(math_spans(text), text)) {
      std::string c = trim(g->content);
      if (!c.empty()) cands.push_back({3, g->end, {c + percent_suffix(text, g->end), false, "math"}});
    }
  }
  if (o.last_number) {
    if (auto n = last_number(text)) {
      cands.push_back({3, n->end, {n->content + percent_suffix(text, n->end), true, "number"}});
    }
  }
  // A short text that is itself an expression ("\\frac{10}{9}", "-5"): the whole of it,
  // unless it is prose (a run of two letters outside a LaTeX command).
  {
    std::string t = trim(text);
    static const RE2 kCommand(R"(\\[a-zA-Z]+)");
    static const RE2 kWord(R"([a-zA-Z]{2,})");
    std::string bare = t;
    RE2::GlobalReplace(&bare, kCommand, " ");
    if (!t.empty() && t.size() <= 200 && t.find('\n') == std::string::npos && !RE2::PartialMatch(bare, kWord) &&
        t.find('$') == std::string::npos) {
      cands.push_back({3, text.size() + 1, {t, t.find('\\') == std::string::npos, "whole"}});
    }
  }
  if (cands.empty()) return std::nullopt;
  auto best = std::min_element(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.priority != b.priority) return a.priority < b.priority;
    return a.end > b.end;
  });
  return best->value;
}

std::optional<Extracted> extract_gold(std::string_view gold) {
  std::string g = trim(gold);
  if (g.empty()) return std::nullopt;
  size_t hashes = g.rfind("####");
  if (hashes != std::string::npos) {
    std::string a = trim(std::string_view(g).substr(hashes + 4));
    if (!a.empty()) return Extracted{a, true, "gsm8k"};
  }
  bool latex_text = g.find('$') != std::string::npos || g.find("\\(") != std::string::npos ||
                    g.find("\\[") != std::string::npos || g.find("\\boxed") != std::string::npos ||
                    g.find("\\fbox") != std::string::npos;
  if (latex_text) {
    ExtractOptions o;
    o.last_number = false;
    if (auto e = extract_answer(g, o)) return e;
  }
  return Extracted{g, g.find('\\') == std::string::npos, "whole"};
}

std::string extract_choice(std::string_view text, std::string_view letters) {
  auto is_choice = [&](char c) { return letters.find(c) != std::string_view::npos; };
  auto letter_of = [&](std::string_view s) -> std::string {
    std::string t;
    for (char c : s)
      if (!std::isspace(static_cast<unsigned char>(c)) && c != '(' && c != ')' && c != '.' && c != '$' && c != ':' &&
          c != '*')
        t += c;
    for (std::string_view w : {"\\text{", "\\textbf{", "\\mathrm{"}) {
      size_t p = t.find(w);
      if (p != std::string::npos) t = t.substr(p + w.size());
    }
    while (!t.empty() && t.back() == '}') t.pop_back();
    if (t.size() == 1 && std::isalpha(static_cast<unsigned char>(t[0]))) {
      char c = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
      return std::string(1, c);
    }
    return "";
  };
  auto boxes = find_boxed(text);
  if (!boxes.empty()) {
    std::string l = letter_of(boxes.back());
    if (!l.empty()) return l;
  }
  static const RE2 kAnchor(R"((?i)answer(?: is|:)\s*(?:\*\*)?\s*\(?\$?(?:\\text\{)?\(?([A-Za-z])\b)");
  re2::StringPiece in(text.data(), text.size());
  std::string letter, last;
  while (RE2::FindAndConsume(&in, kAnchor, &letter)) last = letter;
  if (!last.empty()) return std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(last[0]))));
  // A line that starts with "B." / "(B)" / "B)".
  static const RE2 kLineStart(R"((?m)^\s*\(?([A-Z])[\.\):](?:\s|$))");
  re2::StringPiece in2(text.data(), text.size());
  if (RE2::PartialMatch(in2, kLineStart, &letter) && is_choice(letter[0])) return letter;
  // The last standalone capital choice letter.
  for (size_t i = text.size(); i-- > 0;) {
    char c = text[i];
    if (!is_choice(c)) continue;
    bool left = i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    bool right = i + 1 == text.size() || !std::isalnum(static_cast<unsigned char>(text[i + 1]));
    if (left && right) return std::string(1, c);
  }
  return "";
}

}  // namespace r1kit::rewards::math
