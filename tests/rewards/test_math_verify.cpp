// Conformance against Math-Verify's own test suite (shared/data/mathverify_tests/cases.jsonl,
// 270 verify cases with expected 0/1). Each case runs with the options Math-Verify's test
// helper used (precision -> float_rounding, strict, allow_set_relation_comp; latex-only
// cases without the plain-number fallback; no percent leniency, which Math-Verify lacks).
// Every disagreement must be listed, with its reason, in
// tests/fixtures/mathverify_disagreements.jsonl: a new one fails, and so does a listed one
// that now agrees (so the fixture never goes stale).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "rewards/math_extract.h"
#include "rewards/math_reward.h"
#include "shared_data.h"
#include "src/config.h"

using namespace r1kit;
using namespace r1kit::rewards;

namespace {

struct Outcome {
  int verify_cases = 0, agree = 0;
  std::map<int, std::string> disagreements;  // index -> why
};

Outcome run_cases() {
  Outcome o;
  std::ifstream in(shared_data("mathverify_tests/cases.jsonl"));
  std::string line;
  for (int i = 0; std::getline(in, line); ++i) {
    Json r = Json::parse(line);
    if (!r.contains("expected") || r["expected"].is_null() || !r.contains("gold") || r["gold"].is_null()) continue;
    MathOptions opt;
    opt.equal.percent_lenient = false;
    if (r["precision"].is_number()) opt.equal.float_rounding = r["precision"].get<int>();
    if (r["strict"].is_boolean()) opt.equal.strict = r["strict"].get<bool>();
    if (r["allow_set_relation_comp"].is_boolean())
      opt.equal.allow_set_relation = r["allow_set_relation_comp"].get<bool>();
    bool expr = false;
    for (const auto& m : r["match_types"]) expr = expr || m == "expr";
    if (!r["match_types"].empty() && !expr) opt.extract.last_number = false;
    MathCheck c = check_math_answer(r["gold"].get<std::string>(), r["pred"].get<std::string>(), opt);
    ++o.verify_cases;
    if ((c.correct ? 1 : 0) == r["expected"].get<int>()) {
      ++o.agree;
    } else {
      o.disagreements[i] = c.why;
    }
  }
  return o;
}

}  // namespace

TEST(MathVerify, AgreementAtLeast95PercentAndEveryDisagreementListed) {
  Outcome o = run_cases();
  ASSERT_EQ(o.verify_cases, 270) << "cases.jsonl changed: expected 270 verify cases";
  double agreement = static_cast<double>(o.agree) / o.verify_cases;
  std::printf("Math-Verify agreement: %d/%d = %.1f%%\n", o.agree, o.verify_cases, 100 * agreement);
  EXPECT_GE(agreement, 0.95);

  std::map<int, std::string> listed;
  std::ifstream fx(std::string(R1KIT_SOURCE_DIR) + "/tests/fixtures/mathverify_disagreements.jsonl");
  ASSERT_TRUE(fx) << "missing tests/fixtures/mathverify_disagreements.jsonl";
  std::string line;
  while (std::getline(fx, line)) {
    if (line.empty()) continue;
    Json r = Json::parse(line);
    ASSERT_TRUE(r.contains("reason") && !r["reason"].get<std::string>().empty()) << line;
    listed[r["index"].get<int>()] = r["reason"].get<std::string>();
  }
  for (const auto& [i, why] : o.disagreements)
    EXPECT_TRUE(listed.count(i)) << "new disagreement with Math-Verify at case " << i << ": " << why
                                 << " (fix it, or list it with a reason in the fixture)";
  for (const auto& [i, reason] : listed)
    EXPECT_TRUE(o.disagreements.count(i))
        << "case " << i << " now agrees with Math-Verify: remove it from the fixture (" << reason << ")";
}

// The 7 string-extraction (multiple choice) cases of the same suite.
TEST(MathVerify, ChoiceExtraction) {
  EXPECT_EQ(math::extract_choice("The answer is A."), "A");
  EXPECT_EQ(math::extract_choice("Final answer is B"), "B");
  EXPECT_EQ(math::extract_choice("No valid answer here"), "");
  EXPECT_EQ(math::extract_choice("A. Because B is not valid"), "A");  // the line starts with "A."
  EXPECT_EQ(math::extract_choice("The answer is U.", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "U");
  EXPECT_EQ(math::extract_choice("Because B is valid"), "B");
  EXPECT_EQ(math::extract_choice("so \\boxed{\\text{(C)}}"), "C");
}
