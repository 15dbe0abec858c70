// The `math` reward (see math_reward.h).
#include "rewards/math_reward.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <cctype>

namespace r1kit::rewards {
namespace {

std::string short_text(std::string_view s, size_t n = 40) {
  std::string out;
  for (char c : s) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (out.size() > n) out = out.substr(0, n - 3) + "...";
  return out;
}

std::string normalize_string(std::string_view s) {
  std::string t(s);
  for (std::string_view w : {"\\text{", "\\textbf{", "\\mathrm{", "\\mbox{"}) {
    size_t p;
    while ((p = t.find(w)) != std::string::npos) t.replace(p, w.size(), "{");
  }
  std::string out;
  for (char c : t) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '$' || c == '{' || c == '}') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!out.empty() && (out.back() == '.' || out.back() == ',')) out.pop_back();
  return out;
}

// "C", "(C)", "\text{(C)}": a multiple-choice gold.
std::string choice_letter(std::string_view gold) {
  static const RE2 kChoice(R"(^\s*(?:\\text\{|\\textbf\{)?\s*\(?([A-J])\)?\s*\}?\s*\.?\s*$)");
  std::string letter;
  if (RE2::FullMatch(re2::StringPiece(gold.data(), gold.size()), kChoice, &letter)) return letter;
  return "";
}

class MathReward : public Reward {
 public:
  explicit MathReward(MathOptions o) : o_(std::move(o)) {}

  RewardResult score(const RewardInput& in) const override {
    std::string gold = in.field_string(o_.answer_field);
    if (gold.empty()) return RewardResult::skip(fmt::format("no '{}' field", o_.answer_field));
    MathCheck c = check_math_answer(gold, in.completion, o_);
    if (!c.gold_found) return RewardResult::skip("gold answer is empty");
    RewardResult r = RewardResult::make(c.correct ? 1.0 : 0.0, c.why);
    return r;
  }

 private:
  MathOptions o_;
};

std::unique_ptr<Reward> make_math_reward(JsonFields& f) { return std::make_unique<MathReward>(parse_math_options(f)); }

}  // namespace

bool strings_equal_normalized(std::string_view a, std::string_view b) {
  std::string na = normalize_string(a), nb = normalize_string(b);
  return !na.empty() && na == nb;
}

MathCheck check_math_answer(std::string_view gold_solution, std::string_view completion, const MathOptions& o) {
  MathCheck c;
  auto gold = math::extract_gold(gold_solution);
  if (!gold || gold->text.empty()) return c;
  c.gold_found = true;
  c.gold = gold->text;
  std::string letter = choice_letter(gold->text);
  if (!letter.empty()) {
    c.pred = math::extract_choice(completion, "ABCDEFGHIJ");
    c.correct = c.pred == letter;
    c.why = c.pred.empty() ? fmt::format("no choice letter found (gold {})", letter)
                           : fmt::format("choice {} {} gold {}", c.pred, c.correct ? "==" : "!=", letter);
    return c;
  }
  auto pred = math::extract_answer(completion, o.extract);
  if (!pred) {
    c.why = fmt::format("no final answer found (gold '{}')", short_text(c.gold));
    return c;
  }
  c.pred = pred->text;
  if (strings_equal_normalized(c.gold, c.pred)) {
    c.correct = true;
  } else {
    math::ParseOptions gp, pp;
    gp.plain_text = gold->plain;
    pp.plain_text = pred->plain;
    auto g = math::parse_math(c.gold, gp);
    auto p = math::parse_math(c.pred, pp);
    if (g && p) c.correct = math::math_equal(g, p, o.equal);
  }
  c.why =
      fmt::format("{} '{}' {} gold '{}'", pred->how, short_text(c.pred), c.correct ? "==" : "!=", short_text(c.gold));
  return c;
}

MathOptions parse_math_options(JsonFields& f) {
  MathOptions o;
  f.get("answer_field", o.answer_field);
  f.get("fallback_last_number", o.extract.last_number);
  f.get("answer_tags", o.extract.answer_tags);
  f.get("unanchored_math", o.extract.math_env);
  f.get("float_rounding", o.equal.float_rounding);
  f.get("rel_tol", o.equal.rel_tol);
  f.get("strict", o.equal.strict);
  f.get("allow_set_relation", o.equal.allow_set_relation);
  f.get("percent_lenient", o.equal.percent_lenient);
  return o;
}

R1KIT_REGISTER_REWARD(math, make_math_reward);

}  // namespace r1kit::rewards
