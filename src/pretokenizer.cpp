// Normalizer, pre-tokenizer and the ByteLevel alphabet: see pretokenizer.h.
//
// Reference: huggingface/tokenizers (normalizer.rs `split`, pre_tokenizers/split.rs,
// byte_level.rs, utils/onig.rs), Oniguruma's Ruby syntax, UAX #15 for NFC.
#include "src/pretokenizer.h"

#include <re2/re2.h>

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "src/error.h"

namespace r1kit {
namespace {

// ---------------------------------------------------------------------------------------
// UTF-8

// Bytes of the sequence at s[i]. *complete says whether they form one well-formed char
// (Unicode Table 3-7: no overlongs, no surrogates, <= U+10FFFF); if not, they are the
// "maximal subpart" that from_utf8_lossy replaces by a single U+FFFD.
size_t utf8_scan(std::string_view s, size_t i, bool* complete) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *complete = true;
    return 1;
  }
  int need = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    *complete = false;
    return 1;
  }
  size_t n = 1;
  for (int k = 0; k < need; ++k, ++n) {
    if (i + n >= s.size()) break;
    const auto b = static_cast<uint8_t>(s[i + n]);
    if (b < lo || b > hi) break;
    lo = 0x80;
    hi = 0xBF;
    if (k == need - 1) {
      *complete = true;
      return n + 1;
    }
  }
  *complete = false;
  return n;
}

uint32_t utf8_value(std::string_view s, size_t i, size_t len) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (len == 1) return b0;
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

}  // namespace

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Step to the next char; an invalid byte counts as one char, so scans never stall.
size_t utf8_step(std::string_view s, size_t i) {
  bool complete = false;
  const size_t n = utf8_scan(s, i, &complete);
  return complete ? n : 1;
}

// Onig's \s in UTF-8 mode is the Unicode White_Space property (checked against the library:
// U+001C..U+001F, which Python's str.isspace() accepts, are not in it).
constexpr uint32_t kWhiteSpace[][2] = {{0x09, 0x0D},     {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},
                                       {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                                       {0x205F, 0x205F}, {0x3000, 0x3000}};

bool is_white_space(uint32_t cp) {
  for (const auto& r : kWhiteSpace) {
    if (cp >= r[0] && cp <= r[1]) return true;
  }
  return false;
}

// True when every char of `s` is White_Space (invalid bytes are not).
bool all_white_space(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    bool complete = false;
    const size_t n = utf8_scan(s, i, &complete);
    if (!complete || !is_white_space(utf8_value(s, i, n))) return false;
    i += n;
  }
  return true;
}

std::string hex_cp(uint32_t cp) {
  static const char* kHex = "0123456789ABCDEF";
  std::string digits;
  do {
    digits.insert(digits.begin(), kHex[cp & 0xF]);
    cp >>= 4;
  } while (cp != 0);
  return "\\x{" + digits + "}";
}

// Body of an RE2 character class (no brackets) for White_Space, or for its complement.
std::string white_space_class(bool complement) {
  std::string out;
  auto range = [&](uint32_t a, uint32_t b) {
    out += hex_cp(a);
    if (b != a) {
      out += '-';
      out += hex_cp(b);
    }
  };
  if (!complement) {
    for (const auto& r : kWhiteSpace) range(r[0], r[1]);
    return out;
  }
  uint32_t next = 0;
  for (const auto& r : kWhiteSpace) {
    if (r[0] > next) range(next, r[0] - 1);
    next = r[1] + 1;
  }
  range(next, 0x10FFFF);
  return out;
}

// Onig's Unicode \w: letters, marks, decimal digits, connector punctuation.
constexpr char kWordClass[] = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

// ---------------------------------------------------------------------------------------
// Onig -> RE2

// The one look-ahead real tokenizers use; it must be a whole top-level alternative.
constexpr std::string_view kTrailingSpaceRule = "\\s+(?!\\S)";

// Splits an Onig pattern at its top-level '|' (outside groups and character classes).
std::vector<std::string> top_level_alternatives(std::string_view pat) {
  std::vector<std::string> alts(1);
  int depth = 0;
  int class_depth = 0;
  for (size_t i = 0; i < pat.size(); ++i) {
    const char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      alts.back() += pat.substr(i, 2);
      ++i;
      continue;
    }
    if (class_depth > 0) {
      if (c == '[') ++class_depth;
      if (c == ']') --class_depth;
    } else if (c == '[') {
      class_depth = 1;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      size_t j = i + 1;
      if (j < pat.size() && pat[j] == '^') ++j;
      if (j < pat.size() && pat[j] == ']') {
        alts.back() += pat.substr(i, j + 1 - i);
        i = j;
        continue;
      }
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      alts.emplace_back();
      continue;
    }
    alts.back() += c;
  }
  return alts;
}

// Rewrites an Onig (Ruby syntax) pattern so RE2 matches the same strings. `where` names
// the JSON key in errors.
std::string onig_to_re2(std::string_view pat, const std::string& where) {
  auto unsupported = [&](const std::string& what) -> Error {
    return Error(where + ": " + what + " is not supported by r1kit's RE2 regexes, in pattern " + std::string(pat));
  };
  const std::string white = white_space_class(false);
  const std::string non_white = white_space_class(true);
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pat.size();) {
    const char c = pat[i];
    if (c == '\\') {
      if (i + 1 >= pat.size()) throw Error(where + ": pattern ends with a lone backslash");
      const char n = pat[i + 1];
      i += 2;
      // Onig escapes RE2 lacks or reads differently (\h is a hex digit in Onig).
      if (std::string_view("hHRXKGZgkNOyY").find(n) != std::string_view::npos) {
        throw unsupported(std::string("the escape \\") + n);
      }
      switch (n) {
        case 's':
          out += in_class ? white : "[" + white + "]";
          continue;
        case 'S':
          out += in_class ? non_white : "[^" + white + "]";
          continue;
        case 'd':  // Onig: Unicode digits; RE2: ASCII
          out += "\\p{Nd}";
          continue;
        case 'D':
          out += "\\P{Nd}";
          continue;
        case 'w':
          out += in_class ? std::string(kWordClass) : "[" + std::string(kWordClass) + "]";
          continue;
        case 'W':
          if (in_class) throw unsupported("\\W inside a character class");
          out += "[^" + std::string(kWordClass) + "]";
          continue;
        case 'u': {  // \uHHHH (Onig) -> \x{HHHH} (RE2)
          if (i + 4 > pat.size()) throw Error(where + ": \\u needs four hex digits");
          out += "\\x{" + std::string(pat.substr(i, 4)) + "}";
          i += 4;
          continue;
        }
        case 'p':
        case 'P': {  // \p{...} verbatim: a '^' in \p{^L} is a negation, not an anchor
          out += '\\';
          out += n;
          const size_t close = pat.find('}', i);
          if (i < pat.size() && pat[i] == '{' && close != std::string_view::npos) {
            out += pat.substr(i, close + 1 - i);
            i = close + 1;
          }
          continue;
        }
        default:
          out += '\\';
          out += n;  // the rest of a multi-byte char is copied by the main loop
          continue;
      }
    }
    if (in_class) {
      if (c == '[') {
        throw unsupported(pat.substr(i, 2) == "[:" ? "a POSIX bracket class" : "a nested character class");
      }
      if (c == '&' && i + 1 < pat.size() && pat[i + 1] == '&') {
        throw unsupported("class intersection &&");
      }
      if (c == ']') in_class = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += '[';
      ++i;
      if (i < pat.size() && pat[i] == '^') {
        out += '^';
        ++i;
      }
      if (i < pat.size() && pat[i] == ']') {  // leading ']' is a literal in Onig
        out += "\\]";
        ++i;
      }
      continue;
    }
    if (c == '(' && pat.substr(i, 2) == "(?") {
      const std::string_view rest = pat.substr(i + 2);
      if (rest.starts_with("=") || rest.starts_with("!") || rest.starts_with("<=") || rest.starts_with("<!")) {
        throw unsupported("look-around (other than a whole `\\s+(?!\\S)` alternative)");
      }
      if (rest.starts_with(">") || rest.starts_with("~")) throw unsupported("atomic/absent group");
      if (rest.starts_with("<")) {  // (?<name>...) -> (?P<name>...)
        out += "(?P";
        i += 2;
        continue;
      }
    }
    // Ruby's ^ and $ are line anchors; RE2's are text anchors unless (?m).
    if (c == '^') {
      out += "(?m:^)";
      ++i;
      continue;
    }
    if (c == '$') {
      out += "(?m:$)";
      ++i;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

std::unique_ptr<RE2> compile_re2(const std::string& pattern, const std::string& where, std::string_view original) {
  RE2::Options opt;
  opt.set_log_errors(false);
  opt.set_max_mem(int64_t{64} << 20);  // the \p{L} DFAs of a large regex need more than 8 MB
  auto re = std::make_unique<RE2>(pattern, opt);
  if (!re->ok()) {
    throw Error(where + ": regex " + std::string(original) + " does not compile (" + re->error() + ")");
  }
  return re;
}

std::string join_alternatives(const std::vector<std::string>& alts, size_t begin, size_t end,
                              const std::string& where) {
  std::string out;
  for (size_t k = begin; k < end; ++k) {
    if (k > begin) out += '|';
    out += onig_to_re2(alts[k], where);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// RegexSplit: one HF Split rule.

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class RegexSplit {
 public:
  RegexSplit(std::string_view onig_pattern, SplitBehavior behavior, bool invert, const std::string& where)
      : behavior_(behavior), invert_(invert) {
    const std::vector<std::string> alts = top_level_alternatives(onig_pattern);
    size_t look = alts.size();
    for (size_t k = 0; k < alts.size(); ++k) {
      if (alts[k] == kTrailingSpaceRule) {
        if (look != alts.size()) throw Error(where + ": `\\s+(?!\\S)` appears twice");
        look = k;
      }
    }
    if (look == alts.size()) {
      any_ = compile_re2(onig_to_re2(onig_pattern, where), where, onig_pattern);
      return;
    }
    // `\s+(?!\S)` becomes `\s+` in `any_`; next_match() trims what the look-ahead would.
    lookahead_ = true;
    std::string any = join_alternatives(alts, 0, look, where);
    if (!any.empty()) any += '|';
    any += '[';
    any += white_space_class(false);
    any += "]+";
    const std::string after = join_alternatives(alts, look + 1, alts.size(), where);
    if (!after.empty()) {
      any += '|';
      any += after;
    }
    any_ = compile_re2(any, where, onig_pattern);
    if (look > 0) {
      before_ = compile_re2(join_alternatives(alts, 0, look, where), where, onig_pattern);
    }
    if (!after.empty()) after_ = compile_re2(after, where, onig_pattern);
  }

  // Appends the non-empty pieces of `text`, as HF's NormalizedString::split does.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  bool next_match(std::string_view text, size_t pos, bool here_first, size_t* s, size_t* e) const;

  std::unique_ptr<RE2> any_;     // the whole pattern (look-ahead alternative as `\s+`)
  std::unique_ptr<RE2> before_;  // alternatives before `\s+(?!\S)`, null if none
  std::unique_ptr<RE2> after_;   // alternatives after it, null if none
  bool lookahead_ = false;
  SplitBehavior behavior_;
  bool invert_;
};

// Leftmost-first match of the Onig pattern in text[pos..]. Without the look-ahead this is
// RE2's own answer. With it: `any_` can only match at or before the true match (its
// `\s+` accepts a superset of `\s+(?!\S)`), so we check what it found at s and, when the
// look-ahead alternative is the one that fired, trim or reject it by hand.
//
// `here_first`: try a match anchored at pos before searching. Tokenizer regexes match at
// nearly every position, so the next match usually starts where the last one ended; an
// anchored match is one DFA pass where a search is two (forward for the end, reverse for
// the start). Either way the answer is the same leftmost-first match.
bool RegexSplit::next_match(std::string_view text, size_t pos, bool here_first, size_t* s, size_t* e) const {
  const re2::StringPiece whole(text.data(), text.size());
  while (pos <= text.size()) {
    re2::StringPiece m;
    const bool here = here_first && any_->Match(whole, pos, text.size(), RE2::ANCHOR_START, &m, 1);
    if (!here && !any_->Match(whole, pos, text.size(), RE2::UNANCHORED, &m, 1)) return false;
    *s = static_cast<size_t>(m.data() - text.data());
    *e = *s + m.size();
    if (!lookahead_ || m.empty() || !all_white_space(text.substr(*s, *e - *s))) return true;
    // Alternatives before the look-ahead one have priority and matched as found.
    if (before_ && before_->Match(whole, *s, text.size(), RE2::ANCHOR_START, nullptr, 0)) {
      return true;
    }
    // The `\s+` stand-in took the whole white-space run [s, e). At the end of the text
    // (?!\S) holds; before a non-space char, backtracking gives all but the last char.
    if (*e == text.size()) return true;
    size_t last = *s;
    for (size_t i = *s; i < *e; i = i + utf8_step(text, i)) last = i;
    if (last > *s) {
      *e = last;
      return true;
    }
    // A single space before a non-space: the look-ahead alternative fails here.
    if (after_ && after_->Match(whole, *s, text.size(), RE2::ANCHOR_START, &m, 1)) {
      *e = *s + m.size();
      return true;
    }
    pos = *s + utf8_step(text, *s);  // nothing matches at s: the match starts later
  }
  return false;
}

void RegexSplit::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  struct Segment {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Segment> segs;
  // The onig crate's find_iter: an empty match right where the previous match ended is
  // skipped by stepping one char.
  size_t prev = 0, pos = 0, s = 0, e = 0;
  bool have_last = false;
  size_t last_end = 0;
  bool here_first = true;
  while (pos <= text.size() && next_match(text, pos, here_first, &s, &e)) {
    here_first = s == pos;  // no gap before this match: expect none before the next
    if (s == e && have_last && last_end == e) {
      if (pos >= text.size()) break;
      pos += utf8_step(text, pos);
      continue;
    }
    if (prev != s) segs.push_back({prev, s, false});
    segs.push_back({s, e, true});
    prev = e;
    pos = e;
    last_end = e;
    have_last = true;
  }
  if (prev != text.size()) segs.push_back({prev, text.size(), false});
  if (invert_) {
    for (auto& sg : segs) sg.is_match = !sg.is_match;
  }

  // normalizer.rs `split`: turn (segment, is_match) into pieces per behaviour.
  std::vector<Segment> out;
  bool previous_match = false;
  switch (behavior_) {
    case SplitBehavior::kIsolated:
      out.swap(segs);
      break;
    case SplitBehavior::kRemoved:
      for (const auto& sg : segs) {
        if (!sg.is_match) out.push_back(sg);
      }
      break;
    case SplitBehavior::kContiguous:
      for (const auto& sg : segs) {
        if (sg.is_match == previous_match && !out.empty()) {
          out.back().end = sg.end;
        } else {
          out.push_back(sg);
        }
        previous_match = sg.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& sg : segs) {
        if (sg.is_match && !previous_match && !out.empty()) {
          out.back().end = sg.end;
        } else {
          out.push_back(sg);
        }
        previous_match = sg.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  for (const auto& sg : out) {
    if (sg.end > sg.begin) pieces.push_back(text.substr(sg.begin, sg.end - sg.begin));
  }
}

// ---------------------------------------------------------------------------------------
// ByteLevel alphabet

namespace {

struct ByteLevelTable {
  std::array<std::string, 256> chars;  // byte -> UTF-8 of its stand-in code point
  std::array<int16_t, 324> byte_of{};  // stand-in code point (all < 324) -> byte, or -1
  ByteLevelTable() {
    byte_of.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the other 68 get 256, 257, ... in
    // byte order (GPT-2's bytes_to_unicode).
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      utf8_append(chars[b], static_cast<uint32_t>(cp));
      byte_of[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table;
  return table;
}

}  // namespace

std::string_view byte_level_char(uint8_t b) { return byte_level_table().chars[b]; }

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& t = byte_level_table();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.chars[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  const auto& t = byte_level_table();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    bool complete = false;
    const size_t n = utf8_scan(text, i, &complete);
    if (!complete) return std::nullopt;
    const uint32_t cp = utf8_value(text, i, n);
    if (cp >= t.byte_of.size() || t.byte_of[cp] < 0) return std::nullopt;
    out += static_cast<char>(t.byte_of[cp]);
    i += n;
  }
  return out;
}

namespace {

// Start of the last char of s[0, end): back over at most three continuation bytes.
size_t last_char_start(std::string_view s, size_t end) {
  size_t j = end - 1;
  while (j > 0 && end - j < 4 && (static_cast<uint8_t>(s[j]) & 0xC0) == 0x80) --j;
  bool complete = false;
  return utf8_scan(s, j, &complete) == end - j && complete ? j : end - 1;
}

bool is_word_char(std::string_view ch) {
  // Rust's \w is Alphabetic + M + Nd + Pc + Join_Control; Alphabetic is L + Nl plus a few
  // Other_Alphabetic symbols (circled letters) that we leave out.
  static const RE2 kWord("[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]");
  return RE2::FullMatch(re2::StringPiece(ch.data(), ch.size()), kWord);
}

}  // namespace

size_t leading_white_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    bool complete = false;
    const size_t n = utf8_scan(s, i, &complete);
    if (!complete || !is_white_space(utf8_value(s, i, n))) break;
    i += n;
  }
  return i;
}

size_t trailing_white_space(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    const size_t j = last_char_start(s, end);
    bool complete = false;
    const size_t n = utf8_scan(s, j, &complete);
    if (!complete || n != end - j || !is_white_space(utf8_value(s, j, n))) break;
    end = j;
  }
  return s.size() - end;
}

bool starts_with_word_char(std::string_view s) { return !s.empty() && is_word_char(s.substr(0, utf8_step(s, 0))); }

bool ends_with_word_char(std::string_view s) {
  if (s.empty()) return false;
  const size_t j = last_char_start(s, s.size());
  return is_word_char(s.substr(j));
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    bool complete = false;
    const size_t n = utf8_scan(bytes, i, &complete);
    if (complete) {
      out.append(bytes.substr(i, n));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
    }
    i += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// NFC

namespace {

// Unicode 14 data (Python 3.11's unicodedata), written by
// `tests/parity/tokenizer_parity.py --nfc-tables`, which documents the encoding: numbers in
// a 64-letter alphabet, 5 bits per letter, the last letter of a number from the first 32.
// kNfcDecompositions: per code point with a canonical decomposition (Hangul excluded, it is
// algorithmic), in code point order: (cp delta)*2 + excluded-from-composition, zigzag delta
// of the first char, and 0 for a singleton or zigzag delta of the second char + 1.
// kNfcCombiningClasses: runs of equal non-zero canonical combining class:
// (start - previous end), (end - start), class.
// NFC_TABLES_BEGIN (Unicode 14.0.0)
constexpr char kNfcDecompositions[] =
    "i0a2Xm120320320320B20544XR24YE20320320D28G20320320D4AA22620320320320B6CG20320320D28E6G220320"
    "320320B20544XR24YE20320320D28G20320320D4AA22620320320320B6CG20320320D28E40F2ZF82Y012XV52Y012"
    "XVY52Y012XRYE2Y012XV32Y012XVB2Y012XVB2Y012XT12Y016XTG2Y012XV52Y012XV32Y012XVY32Y012XVXO2Y012"
    "XRK2Y012XV92Y012XV32Y012XVY12Y012XTYA2Y016XT32Y012XV32Y012XV52Y012XVY52Y012XVY282A2Y012XTYB2"
    "Y014XTYC2Y012XVYD2Y012XVXM2Y01AXRM2Y012XVYD2Y012XVXM2Y018XTG2Y012XV52Y012XVB2Y016XPK2Y012XVY"
    "D2Y012XVXM2Y012XTM2Y012XV32Y012XVYB2Y012XVXM2Y012XTXN2Y012XVXM2Y016XTI2Y012XV32Y012XV52Y012X"
    "V92Y012XV32Y012XVXR2Y012XRYC2Y012XR12Y012XVD22E2Y012XVD2Y012XVB2Y01Y4YLV2Y01SXJ12Y01XQZ7U2Y0"
    "12XF12Y012XJ12Y012XJ12Y012cEG2Y012XV62Y012XVN2Y012XVO2Y014ZF92Y012q412212s112Y016fTH2Y012XN1"
    "2Y012XNXP2Y012tMY82212Z7H2jM12XYF18Y5M2Y016XH22Y012bE32Y012XT12Y012R12Y012hDT2Y012XV52Y012XN"
    "42Y012XV52Y012XN42Y012XV52Y012XJ42Y012XV52Y012XP42Y012XV52Y012XP42Y012XV52Y012Y3XB2Y012XT12Y"
    "016YNXK2Y01EYDA2Y012XNY12Y012d2Y62Y012Y112Y012gB72Y012xU62212zB12Y01mRXeE03205X403L6Z1aT0LXd"
    "R0EcQ12XkI13XjJ02XjS12412414C14C12812Y21XKZ1F2O12OE2812412412X41XKX3F2O12BE2C1281AI120FYOa6G"
    "20H43E8PFAX8E2322MDML1Y0Y01XE5C20H43E8Y6FAXNE2322MDXGZ2J221aKbTI2Y01SYB12Y012XV52Y016XL42Y01"
    "6g652212i512Y012XT12Y016XT82Y012XV92Y012XJ12Y016gK12212hN12Y012YJ82Y012XV92Y012XV72Y012XN62Y"
    "016XN12Y01oIzOXqN2032Y212Y132Y62fKeM14X71X2X21XbCXbCXkHGG1661Y9XR13213213A13A13213I1381cOfGe"
    "520XJX1YBXM3215Q1b9e6e17C1Y7Y313213A17U1kKnOnL60XG20XJX1YBXM321ZEd0fNZCZ8XI22121XJdOe0dVdGdI"
    "dVEE120340X828X7dUdOcJ22121XJeSf6d740B26A25XBsBsIzHLK1BA1BA1BA1RXL4LZ2a65053a2P521Ja31X5Y2ZF"
    "LK1BA1BA1BA1RXL4cQfAdJbk0bk0bmF441441441441881YIYI1441641221461XhQjm1iX02Y012XTXS2Y012XVXP2Y"
    "012XVT2Y012cAZ02Y012g5D2Y012XVXP2Y012XVT2Y012XVK2Y012XVD2Y012gSYQ2212132212iRYP2Y012XV72Y012"
    "y6YK2212-532Y012XT62Y012XT72Y012XVXP2Y012XVXM2Y012XVXV2Y012XVF2Y012XT52Y012cCYU2Y012g712Y012"
    "XVY52Y012XVT2Y012XTS2Y012kyKXU2212k-LYR2Y012XV82Y012XTYO2Y012XVD2Y012XVXP2Y012XTXO2Y012XVXP2"
    "Y012XVT2Y012XV82Y012cEYO2Y012XVF2Y012bEG2212132212lP12Y012XVD2Y012XR12Y012XVXP2Y012k-GXU2212"
    "lWHYR2Y012XTYK2Y012XVXP2Y012kEXO2212A12212km212212lWT12Y012XVXP2Y012XVT2Y012XV82Y012XTI2Y012"
    "XVP2Y012XV62Y012l6YO22122F2212n9A2Y012XVY12Y012XTY62Y012XV32Y012XVF2Y012XV22Y012XVXP2Y012XTX"
    "O2Y012XV32Y012XT22Y012XTA2Y012XVY32Y012XVT2Y012X312OYI2652414mC6ApRXP2Y012XVXK2Y012c2G2Y012X"
    "V22Y012XVJ2Y012XVC2Y012kxS22212kvT222121222121J22121C2212kvQ72212lbNXR2Y012XVXK2Y012XVC2Y012"
    "cA42Y012XV22Y012XVJ2Y012XVC2Y012kyS22212lcVF2Y012XVXL2Y012XJ12Y012XVXK2Y012cAG2Y012XV22Y012X"
    "VJ2Y012XVC2Y012kzG22212koP222121222121J22121C22121Y12212qN12Y012XVXK2Y012pKG22121222121J2212"
    "1C22121Y12212rDY62Y012XVY72Y012XVXK2Y012XVC2Y01EXpGX12032jqUX822121322121a32212jsVYU2032jtEX"
    "822121322121a32212jr7YU2032jrMX82212132216jtNX52032ju6X82212132216js3X52032jsIX822121322121a"
    "32212juJYU2032jv2X822121322121a32212jsVYU2032jtEX822121322121a32212jvFYU2032jvUX822121322121"
    "a32212jtJYU2032ju2X82212132216jw3X52032jwIX82212132216ju7X52032juMX822121322121a32214jwNYS4j"
    "x8X840340a32juVYU2032jvEX822121322121a32212jxFYU2032jxUX822121322121a32212jxFa43902I13F02K13"
    "H02M13J02X013Q02D13G02713A06jp4aB2212212212212212212212212212212212212212212212X212212212212"
    "212212212212212212212212212212212212Z212212212212212212212212212212212212212212212212jxRZU20"
    "42jxUa32jxT12914A62kWA72kY9ZU2042083L02MaB5YG06Xn162liO72jxP12H14I62kWU72kZ1aA3P02U13R02SaB2"
    "kYGaA20320a32kWBZO2042X283ZJ06YIa52X212Z1ZO2042083T04kd8120320a32kZHZO2042C83XL02X2X720328YT"
    "2C12YBZO2042083XD02X6X92XlHX83XjQ03Xo906lnOaB2jx512A14962kYQ72kbDaA3X502XQ13XJ02XKaB3Xl907lq"
    "S0320oBkbJ09XrR03dK0cUmiMQ241X641XUZO1281231ZAZ21AA1661XGXG1441XMXE16E1641461XEnWL14nY81MX71"
    "2nX112412nYC12216Q1221661221E612216E1221661221Y6XM12C1221241Z2YT12212X81221EY01221221221ZPcr"
    "60320Zx5YoN1Yt0YsSss3441441441441441441441441441441441661441441EE120346220346220346220346220"
    "3XEZ92KbE1SS1441441441441441441441441441441441661441441EE1203462203462203462203462203XEZ926a"
    "I12212212218M1ZaW5XjqM03or703pzC03XW303k_D03mfT03Yx603XbxE03003XZaL03ye003-aJ03Xy203agS03gd6"
    "03anO03ZhK03tM03pS03ZvE03peP03XnI03XxS03XmA03ebU03coQ03aeE03XbsT03Yl603huU03ZnE03gX403h_203X"
    "WiR03ffM03g-403XvE03pfL03lmU03ZaE03qr903aaQ03Zb603Yv403kz403XWqF03XZ203oE03e-C03ZWU03ZpQ03Yj"
    "E03anK03ZWA03bC03Zv603aq603YZQ03XeM03osR03l603YY203ZYI03dpM03btM03fwH03u_D03ZYA03krO03YXS03d"
    "XN03ZcG03f_G03bZA03_XT03XuK03cx203XyE03pA03dY003mG03iX803XXtH03sxI03tgT03V03qb003Xw403ZZ603f"
    "e803bl903qh103Zp603mlO03-i903cwS03YYM03ftA03-I03nbH03o-803qpN03d-K03evN03lhU03Zr703hwK03qrT0"
    "3YfM03lg603cqG03Zc203lkV03n_C03noF03auJ03l-E03lq903eyA03phD03XhM03c003hhG03gcC03YuG03ac603Zl"
    "Q03_jJ03qQ03Yp203YtI03ZjI03bZI03aoO03ke603YhQ03YYQ03ZE03XcZ503gYM03Yh203n-M03ukR03XnO03d003X"
    "fK03beI03XYC03Xq003Yq203YYK03XdM03dhE03bZF03bpA03XoE03XWp503eO03XXK03kWM03h_K03-G03r-103oO03"
    "XuC03aZ603ef003aiH03of103aXA03YkS03z603Xc403fvC03hE03bp203gO03e-S03Yi403b403j003XaeP03rY603i"
    "WC03Ym803wzD03fbL03Xb803bn803b203arK03YcI03ZyO03Yd803dhK03bu003dn203ym903twC03XXw903gl403dG0"
    "3YqS03rM03YsQ03r003Xn403YgA03jqS03XZl103ei203waK03XZaP03ckS03ej203mq003tvT03xI03Zj603bt003nl"
    "U03XYbP03-C03abC03awS03pM03rK03YZQ03Zo203zO03avE03arC03X403akM03YnC03XXw503jtM03jfP03kx603Xi"
    "G03es403egI03Yx803XaG03xmF03ZZ803gXQ03ZnP03bA03t403az303XYD03jhU03-fF03wdC03ulN03Z503cfU03YY"
    "Q03jW603mr103evI03ZcJ03qeE03ZkT03dW203ci303rhF03cv503Ye007XfK05dXK07gfB03mqO03Xw003Xd403Y403"
    "E03YK03kyE03jfF03XlU05ZbA05YkC07Yq003iA09Z_403Q03YO03YeO03cjB03YzI03XZmH03pI03cC03tO03XM03cQ"
    "03XaO03cI03c403zG03cG03XxO03K03YYC03j803YC03c803XrQ03f603gU03_803Yl403g603mG03XaO03hQ03_E03Y"
    "cU03gQ03M03103G03C03E03Z003203h403a203pU03XZ803XA03ZG03p203f603-G03eO03003zS03YhI03eC03sM03Z"
    "G03vK03ZA03XgS03e403ZgM03nO03ZO03xyB03dndI03dWjB07v_303XuU03aP03-F03yA03ZM03qE03Z603Xg603aF0"
    "3a803aI03XdG03bI03f203X003mS03iC03XwK03E03f003a803oM03dC03aB03eC03YR03f403a403v003bG03ZC03m8"
    "03nS03g603803ZM03YY603a203uE03vK03V03bE03lO03r003ZZI03Yt303dK03dM03qE03fA03ZA03k403403gM03X2"
    "03XI03bC03J03uO03-A03mU03hM03k003fI03qK03iE03XqQ03fQ03XuK03yG03aA03X003oI03ZI03YP03ZC03503X1"
    "03aO03b203tS03XZ003pK03oE03jQ03YWC03cE03d603eA03Y803O03Z003XjE03YeK03cagS03B03bv203dyZF03YdM"
    "03Y203efX003beE03nW603dluV03aM0a9Yix9rkA5XI7NHL3033Zws023033ZwtHM303309321321321321321321541"
    "3213213213215415413215413215413213213213213X9637D3K13I1gqOabhAablN441UK1e6eOcR221XXOXXAXXF20"
    "XJsUt4s720K40RlOlUl5221XtQXtOXu3YyYDYyY4YyZB3213EJ303303303303bFbKQ32132J321313321apa1cXtT03"
    "903I03cvk203cuy303aS03Q03aE03dG03XU03aS03XF03kZ103devO03cwkP03E03X003X603cvwA03dec503kgS03YC"
    "03cvxS03cvx703Q03XjF03Xk003I03fWYK03e_-J03S03ko703krO03M03YO03A03ks303kx403403XM03XC03M03203"
    "X203Z403G03I03XI03K03403003003cxgQ03cixN03kgB03XA03cxu803cxtF03C03XA03fG03cB03X003Y003ZK03b8"
    "03XK03a603X003Y203003XA03X403G03U03r803mV03n203iB03Y603YcP03ZkE03nV03YC03XI03e303gE03103dM03"
    "c-ZG03cz_303A03U03X803G03a003c-qC03a403c-lR03YU03O03aT03eS03ntF03S03oWO03ZC03003c_eK03c_W903"
    "XA03U03O03c_oA03c_nH03E03XqQ03Xp103og103ojU03S03b403Z503dWrE03dWg103dWg603dWdF03503X203cA032"
    "03ox503oyS03YM03XA03YO03pWD03dqo203dqmD03pZ803603603X803fYiG03fYf703dYZ603003cmoV03njT03003p"
    "bL03dy_203to403eXdF03I03peF03phE03Z603K03Y403eG03pqD03XR03ptG03dZa003dZWP03e203803403303YS03"
    "X803Y803R03M03YU03X803803XK03M03a403b803Y603dO03dZxO03dZyT03a103cO03XM03c203daWQ03dZyT03bP03"
    "XN03qtL03rZM03XA03XU03YB03rWL03rk603XQ03dbfS03dbYD03nA03gT03roV03rtG03ruH03Y703hgS03603gsM03"
    "c703jX203-j703npS03803C03ZQ03L03dcd003dydJ03sh203d903iQ03Z603db-G03dbzT03cT03lA03stD03swA03c"
    "203aE03hS03db_M03dbyF03ti503tmI03dcuC03dcr503tmB03to803YQ03XM03203ddj403ku303k-U03ddgN03decS"
    "03dd_P03S03cB03gU03YG03ZI03ZB03YG03U03Q03ddvI03dd-J03lM03ZU03upL03uvG03703deWK03dejF03tA03dd"
    "_003Z003ddyF03d603XL03503ve903vh803Z603B03ZC03cgdG03cfzV03denS03deiD03dfWU03deu503Q03XM03dfx"
    "G03dfuF03XA03dgg003jU03dgfJ03X203wjT03wlI03wkP03003wuU03XA03XA03X803aA03wwT03xWI03dhn403dhlF"
    "03dhr803dho303csYU03cruT03div203XE03eO03eeaF03O03xkO03di_U03103YE03XK03djX903203003YM03xn103"
    "xr403xq903b003efuE03djyT03ZS03a003x-H03egq603dkiV03dkq803YM03dkpB03bO03yhN03yn203K03A03dloQ0"
    "3oM03003dlxH03ykN03eiwI03dl-903603yw303ejbI03dlwR03zZ303zaG03903XQ03dneC03dnY503zc303ziC03ZM"
    "03a603zn103ell803XU03elkR03elu003dnrT03dny803dnwH03cA03M03dojA03aI03doi503doqG03dopF03cvkU03"
    "dtuJ03-jQ03b203-lF03-p603peH03ecl403S03wY303I03cuvL03603cvK03Xbp503_YC03B03X403t-J03t_S03403"
    "K03YI03dqbC03dqbD03ZG03aC03aK03eJ03fK03YK03d003m703dE03403X003dqbK03pA03fB03epwJ03_yC03403Y6"
    "03dth803dtcB03dqyG03eqyT03803erb003o203ersD03XWkA03O03M03403a003Y103eC03YN03fE03b103a603XM03"
    "XWwT03XXWK03Y003XXWF03XXcE03603dtW803dsuV03E03XXgH03XXiA03XgZT03fX_603hG03evgF03I03XXzI03aQ0"
    "3fQ03iM03dub603dt_P03XC03bK03bO03duxG03XxoL03bzZH03T03Z803bzkS03bzWJ03c803dxfK03XM03dwrH03bQ"
    "03Y003dxXQ03dxX503nQ03fU03203bN03tQ03XO03dx-A03dxcT03Xb_B03XcY403dxy003fXv103XcjQ03yn103yt20"
    "3dzY403jA03fZwN03G03XcsK03d-YK03farF03fa-803d-eL03003XS03d-uQ03d-j703XcwT03Xc_C03dS03XM03ZO0"
    "3XdYV03fds403eWXR03oS03hQ03XeYT03XU03XedK03eXsE03ffzB03fgWQ03mI03e603eXzB03Xes903Xew603A03E0"
    "3K03E03YA03eZiA0";
constexpr char kNfcCombiningClasses[] =
    "u0Kd610d813cS10d810cO14cS11cA13cS11cA1AcS14113cS17d610dG10d612cS12d611cS22d613cS10d610d811cS"
    "10d610d911dA10d911dA10d91Cd6eK4d6eA0cS13d610cS12d610cU10cS15d615cS11d610cS11d610cU10d410d610"
    "A10B10C10D10E10F10G10H10I11J10K10L10M20N20O10P20d610cS20IY97d610U10V10X0XH0R10S10T10U10V10X0"
    "10X110X211d611cS14d610cS11d610cSH0X3Z66d633d610cS10d631d620cS11d610cSX40X4V0d610cS11d610cS11"
    "d612cS10d611cS10d610cS12d610cS10d610cS10d610cS10d610cS11d6b16d610cS10d6A0cSP3d628d622d624d6X"
    "C2cSXT0d612cS13d6XB4d614cS1Dd620cS11d610cS11d610cS12d612cS10R10S10T12d610cS11d611cS14d6XT07H"
    "0940d610cS11d6Z807H09XH0d6XU07H09ZF07H09ZF07H09a009ZF07H0980YK10YRZ607H09ZE19H09ZT09ZE1Z7109"
    "E3ZBZD1ZM109E3ZQYD1cSS0cS20cS20cOXO0a110a220a463a230a221d610921d6XV0cSZH07219YJ0cSsG2d6zL19V"
    "09aU09B0d6cC0d4aG0cU10d610cScS0d610cSY809L7d630cSXH4d615cS11d610cS21cS11d611cS14d610cS13d6Z6"
    "07G09X70d610cS16d6XN19XR07C19Y407aP2d620114cS11d613cS10d626150cS70d641d6c71d610cS16d610cS11d"
    "610dA10cM10cS10cA1X4d610d811d410cS10cQ10d610d910cS10d610cSsH1d611113d612111d650d641110d610cS"
    "10d611113cS10d6Y_V2d6aE09Z1Vd6nB0cQ10d410d810cU11d0ZA18zkL0d659d6X11d6YH1d6eL09X609aO09SHd6X"
    "Q2cSX609Z007D09dG0d621d610cS31d661d620d6XL09dN09pvH0Qu26d616cS11d6-E0cSd30cSaM4d6XqJ0cS20d6X"
    "90d610110cS509b60d610cSnU3d6i41d6aQ1cS12d610cS10d613cSXI0d610cS10d610cSc109XA09F09XQ09107Y62"
    "d6XH19XV07YD09A07ZB09107bJ07109YH17H09P6d644d6cE09407O0d6Z409107dS09107ZV09ZN09107ZK09eE0910"
    "7e319507aT09YK09J09YI09j609e307219YI09pgP41XS6d6XbQ16pbD01bc71cO12140d214cO97cS34d611cSV3d6a"
    "L2d6ZjS6d62Gd636d621d624d6e66d6hO0d6XU3d6Xl16cSZE5d6107";
// NFC_TABLES_END

class VarintReader {
 public:
  explicit VarintReader(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  uint32_t next() {
    uint32_t v = 0;
    while (true) {
      const int d = digit(s_[i_++]);
      v = (v << 5) | static_cast<uint32_t>(d & 31);
      if (d < 32) return v;
    }
  }
  int32_t next_signed() { return unzigzag(next()); }
  static int32_t unzigzag(uint32_t z) {
    return (z & 1) ? -static_cast<int32_t>((z + 1) / 2) : static_cast<int32_t>(z / 2);
  }

 private:
  static int digit(char c) {
    static constexpr std::string_view kDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
    return static_cast<int>(kDigits.find(c));
  }
  std::string_view s_;
  size_t i_ = 0;
};

struct NfcTables {
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> decomposition;  // second 0: singleton
  std::unordered_map<uint64_t, uint32_t> composition;  // (first << 32 | second) -> primary composite
  std::unordered_map<uint32_t, uint8_t> combining_class;

  NfcTables() {
    VarintReader d(kNfcDecompositions);
    int64_t cp = 0, first = 0, second = 0;
    while (!d.done()) {
      const uint32_t head = d.next();
      cp += head >> 1;
      first += d.next_signed();
      const uint32_t s = d.next();
      if (s != 0) second += VarintReader::unzigzag(s - 1);
      const uint32_t sec = s == 0 ? 0 : static_cast<uint32_t>(second);
      decomposition[static_cast<uint32_t>(cp)] = {static_cast<uint32_t>(first), sec};
      if (sec != 0 && (head & 1) == 0) {
        composition[(static_cast<uint64_t>(first) << 32) | sec] = static_cast<uint32_t>(cp);
      }
    }
    VarintReader c(kNfcCombiningClasses);
    uint32_t end = 0;
    while (!c.done()) {
      const uint32_t begin = end + c.next();
      end = begin + c.next();
      const auto cls = static_cast<uint8_t>(c.next());
      for (uint32_t k = begin; k <= end; ++k) combining_class[k] = cls;
    }
  }
};

const NfcTables& nfc_tables() {
  static const NfcTables tables;  // decoded on first use (~3k entries, well under 1 ms)
  return tables;
}

// Code points stand for themselves; an invalid byte b travels as kRawByte + b, a value no
// table knows (class 0, no decomposition), and is written back as the byte.
constexpr uint32_t kRawByte = 0x110000;

constexpr uint32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr uint32_t kHangulVCount = 21, kHangulTCount = 28, kHangulNCount = 588, kHangulSCount = 11172;

uint8_t combining_class(const NfcTables& t, uint32_t cp) {
  if (cp < 0x300) return 0;
  const auto it = t.combining_class.find(cp);
  return it == t.combining_class.end() ? 0 : it->second;
}

void decompose(const NfcTables& t, uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kHangulS && cp < kHangulS + kHangulSCount) {  // UAX #15 / Unicode 3.12
    const uint32_t s = cp - kHangulS;
    out.push_back(kHangulL + s / kHangulNCount);
    out.push_back(kHangulV + (s % kHangulNCount) / kHangulTCount);
    if (s % kHangulTCount != 0) out.push_back(kHangulT + s % kHangulTCount);
    return;
  }
  const auto it = cp < 0xC0 ? t.decomposition.end() : t.decomposition.find(cp);
  if (it == t.decomposition.end()) {
    out.push_back(cp);
    return;
  }
  decompose(t, it->second.first, out);
  if (it->second.second != 0) decompose(t, it->second.second, out);
}

// The primary composite of (a, b), or 0.
uint32_t compose(const NfcTables& t, uint32_t a, uint32_t b) {
  if (a >= kHangulL && a < kHangulL + 19 && b >= kHangulV && b < kHangulV + kHangulVCount) {
    return kHangulS + ((a - kHangulL) * kHangulVCount + (b - kHangulV)) * kHangulTCount;
  }
  if (a >= kHangulS && a < kHangulS + kHangulSCount && (a - kHangulS) % kHangulTCount == 0 && b > kHangulT &&
      b < kHangulT + kHangulTCount) {
    return a + (b - kHangulT);
  }
  const auto it = t.composition.find((static_cast<uint64_t>(a) << 32) | b);
  return it == t.composition.end() ? 0 : it->second;
}

}  // namespace

std::string nfc_normalize(std::string_view text) {
  // Below U+0300 nothing decomposes, combines or reorders: UTF-8 lead bytes up to 0xCB.
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<uint8_t>(c) < 0xCC; })) {
    return std::string(text);
  }
  const NfcTables& t = nfc_tables();
  // 1. Full canonical decomposition.
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    bool complete = false;
    const size_t n = utf8_scan(text, i, &complete);
    if (!complete) {
      for (size_t k = 0; k < n; ++k) cps.push_back(kRawByte + static_cast<uint8_t>(text[i + k]));
    } else {
      decompose(t, utf8_value(text, i, n), cps);
    }
    i += n;
  }
  // 2. Canonical ordering: a stable sort by class inside each run of non-starters.
  for (size_t i = 1; i < cps.size(); ++i) {
    const uint8_t cc = combining_class(t, cps[i]);
    if (cc == 0) continue;
    for (size_t j = i; j > 0; --j) {
      const uint8_t prev = combining_class(t, cps[j - 1]);
      if (prev == 0 || prev <= cc) break;
      std::swap(cps[j - 1], cps[j]);
    }
  }
  // 3. Canonical composition: a char joins the last starter unless a char between them
  // blocks it (class 0, or a class >= its own).
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  ptrdiff_t starter = -1;
  for (const uint32_t cp : cps) {
    const uint8_t cc = combining_class(t, cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<size_t>(starter) + 1 == out.size();
      const uint8_t last_cc = adjacent ? 0 : combining_class(t, out.back());
      if (adjacent || (last_cc != 0 && last_cc < cc)) {
        const uint32_t composite = compose(t, out[starter], cp);
        if (composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<ptrdiff_t>(out.size());
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (const uint32_t cp : out) {
    if (cp >= kRawByte) {
      result += static_cast<char>(cp - kRawByte);
    } else {
      utf8_append(result, cp);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Normalizer

namespace {

// Returns whether the (possibly nested) normalizer applies NFC.
bool parse_normalizer(const Json& j, const std::string& where) {
  if (j.is_null()) return false;
  JsonFields f(j, where);
  std::string type;
  f.require("type", type);
  bool nfc = false;
  if (type == "NFC") {
    nfc = true;
  } else if (type == "Sequence") {
    Json list;
    f.require("normalizers", list);
    if (!list.is_array()) f.fail("normalizers", "must be an array");
    for (size_t k = 0; k < list.size(); ++k) {
      // NFC is idempotent, so any number of NFC steps is one.
      nfc = parse_normalizer(list[k], f.path("normalizers[" + std::to_string(k) + "]")) || nfc;
    }
  } else {
    f.fail("type", "\"" + type + "\" is not supported (r1kit supports null, NFC and a Sequence of NFC)");
  }
  f.finish();
  return nfc;
}

}  // namespace

Normalizer Normalizer::from_json(const Json& j, const std::string& where) {
  Normalizer n;
  n.nfc_ = parse_normalizer(j, where);
  n.json_ = j;
  return n;
}

std::string Normalizer::normalize(std::string_view text) const {
  return nfc_ ? nfc_normalize(text) : std::string(text);
}

// ---------------------------------------------------------------------------------------
// PreTokenizer

namespace {

// tokenizers' ByteLevel regex (pre_tokenizers/byte_level.rs), applied with Isolated.
constexpr std::string_view kGpt2Pattern =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kQwen2Pattern =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kLlama3Pattern =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// DeepSeek-V3: digits in groups of three, runs of CJK ideographs and kana, then the rest.
constexpr std::string_view kDeepSeekV3Patterns[] = {
    R"re(\p{N}{1,3})re",
    R"re([一-龥぀-ゟ゠-ヿ]+)re",
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
};

SplitBehavior parse_behavior(JsonFields& f) {
  std::string b;
  f.require("behavior", b);
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  f.fail("behavior", "\"" + b +
                         "\" is not one of Removed, Isolated, MergedWithPrevious, "
                         "MergedWithNext, Contiguous");
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const Json& j, const std::string& where) {
  PreTokenizer pt;
  pt.json_ = j;
  bool byte_level = false;  // seen ByteLevel: it maps bytes to chars, so it must come last
  std::function<void(const Json&, const std::string&)> parse = [&](const Json& node, const std::string& at) {
    if (node.is_null()) throw Error(at + " is null; r1kit needs a ByteLevel pre-tokenizer");
    JsonFields f(node, at);
    std::string type;
    f.require("type", type);
    if (byte_level) {
      f.fail("type", "\"" + type + "\" after ByteLevel is not supported (ByteLevel must be last)");
    }
    if (type == "Sequence") {
      Json list;
      f.require("pretokenizers", list);
      if (!list.is_array()) f.fail("pretokenizers", "must be an array");
      for (size_t k = 0; k < list.size(); ++k) {
        parse(list[k], f.path("pretokenizers[" + std::to_string(k) + "]"));
      }
    } else if (type == "ByteLevel") {
      bool add_prefix_space = true, trim_offsets = true, use_regex = true;  // library defaults
      f.get("add_prefix_space", add_prefix_space);
      f.get("trim_offsets", trim_offsets);  // offsets only; r1kit returns no offsets
      f.get("use_regex", use_regex);
      if (add_prefix_space) pt.steps_.push_back({true, nullptr});
      if (use_regex) {
        pt.steps_.push_back(
            {false, std::make_shared<RegexSplit>(kGpt2Pattern, SplitBehavior::kIsolated, false, f.path("type"))});
      }
      byte_level = true;
    } else if (type == "Split") {
      Json pattern;
      f.require("pattern", pattern);
      const std::string pat_where = f.path("pattern");
      if (!pattern.is_object() || pattern.size() != 1 || !(pattern.contains("Regex") || pattern.contains("String")) ||
          !pattern.begin()->is_string()) {
        throw Error(pat_where + " must be {\"Regex\": \"...\"} or {\"String\": \"...\"}");
      }
      const std::string text = pattern.begin()->get<std::string>();
      const bool is_regex = pattern.contains("Regex");
      const SplitBehavior behavior = parse_behavior(f);
      bool invert = false;
      f.get("invert", invert);
      const std::string onig = is_regex ? text : RE2::QuoteMeta(text);
      pt.steps_.push_back(
          {false, std::make_shared<RegexSplit>(onig, behavior, invert, pat_where + (is_regex ? ".Regex" : ".String"))});
    } else if (type == "Digits") {
      bool individual = false;
      f.get("individual_digits", individual);
      // Rust's char::is_numeric: general category N (Nd, Nl, No).
      pt.steps_.push_back({false, std::make_shared<RegexSplit>(
                                      "\\p{N}", individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                                      false, f.path("type"))});
    } else {
      f.fail("type", "\"" + type +
                         "\" is not supported (r1kit supports ByteLevel, Split, Digits "
                         "and Sequence of them, for byte-level BPE)");
    }
    f.finish();
  };
  parse(j, where);
  if (!byte_level) {
    throw Error(where + ": no ByteLevel pre-tokenizer; r1kit only reads byte-level BPE tokenizers");
  }
  return pt;
}

Json PreTokenizer::preset(std::string_view name) {
  auto split = [](std::string_view regex) {
    return Json{{"type", "Split"},
                {"pattern", Json::object({{"Regex", std::string(regex)}})},
                {"behavior", "Isolated"},
                {"invert", false}};
  };
  auto byte_level = [](bool use_regex) {
    return Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
  };
  auto sequence = [](std::vector<Json> steps) {
    return Json{{"type", "Sequence"}, {"pretokenizers", Json(std::move(steps))}};
  };
  if (name == "gpt2") return byte_level(true);
  if (name == "qwen2") return sequence({split(kQwen2Pattern), byte_level(false)});
  if (name == "llama3") return sequence({split(kLlama3Pattern), byte_level(false)});
  if (name == "deepseek_v3") {
    std::vector<Json> steps;
    for (std::string_view p : kDeepSeekV3Patterns) steps.push_back(split(p));
    steps.push_back(byte_level(false));
    return sequence(std::move(steps));
  }
  throw Error("unknown pre-tokenizer \"" + std::string(name) + "\" (known: gpt2, qwen2, llama3, deepseek_v3)");
}

void PreTokenizer::run(size_t step, std::string_view piece, const std::function<void(std::string_view)>& emit) const {
  if (step == steps_.size()) {
    emit(piece);
    return;
  }
  const Step& st = steps_[step];
  if (st.prefix_space) {
    // byte_level.rs: every piece that does not start with ' ' gets one.
    if (piece.front() == ' ') {
      run(step + 1, piece, emit);
    } else {
      std::string spaced;
      spaced.reserve(piece.size() + 1);
      spaced += ' ';
      spaced += piece;
      run(step + 1, spaced, emit);
    }
    return;
  }
  std::vector<std::string_view> parts;
  st.re->split(piece, parts);
  for (const std::string_view p : parts) run(step + 1, p, emit);
}

void PreTokenizer::split(std::string_view text, const std::function<void(std::string_view)>& emit) const {
  if (!text.empty()) run(0, text, emit);  // the library drops empty pieces before this
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> words;
  split(text, [&](std::string_view w) { words.emplace_back(w); });
  return words;
}

}  // namespace r1kit
