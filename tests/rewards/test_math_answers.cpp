// Math answers end to end: every MATH-500 gold accepted against itself (as \boxed{} and as
// "The answer is $...$") and a wrong number rejected; GSM8K "#### 1,200" golds; and small
// hand-checked cases for extraction, parsing and equivalence.
#include <gtest/gtest.h>

#include <fstream>

#include "rewards/math_equal.h"
#include "rewards/math_extract.h"
#include "rewards/math_parse.h"
#include "rewards/math_reward.h"
#include "shared_data.h"
#include "src/config.h"

using namespace r1kit;
using namespace r1kit::rewards;

namespace {
bool same(const std::string& gold, const std::string& completion, MathOptions o = {}) {
  return check_math_answer(gold, completion, o).correct;
}
bool eq(const std::string& a, const std::string& b, math::EqualOptions o = {}) {
  auto x = math::parse_math(a), y = math::parse_math(b);
  EXPECT_TRUE(x) << "does not parse: " << a;
  EXPECT_TRUE(y) << "does not parse: " << b;
  return x && y && math::math_equal(x, y, o);
}
}  // namespace

TEST(Math500, EveryGoldAcceptsItselfAndRejectsAWrongNumber) {
  std::ifstream in(shared_data("math500/test.jsonl"));
  std::string line;
  int n = 0, boxed = 0, answer_is = 0, wrong_rejected = 0;
  std::vector<std::string> failures;
  while (std::getline(in, line)) {
    Json row = Json::parse(line);
    std::string a = row["answer"].get<std::string>();
    ++n;
    if (same(a, "So we get \\boxed{" + a + "}."))
      ++boxed;
    else
      failures.push_back("boxed: " + a);
    if (same(a, "Putting it together. The answer is $" + a + "$."))
      ++answer_is;
    else
      failures.push_back("answer is: " + a);
    // 987654321 is no MATH-500 answer.
    if (!same(a, "So we get \\boxed{987654321}."))
      ++wrong_rejected;
    else
      failures.push_back("wrong accepted: " + a);
  }
  for (size_t i = 0; i < failures.size() && i < 20; ++i) ADD_FAILURE() << failures[i];
  std::printf("MATH-500: %d/%d boxed, %d/%d 'The answer is', %d/%d wrong rejected\n", boxed, n, answer_is, n,
              wrong_rejected, n);
  EXPECT_EQ(n, 500);
  EXPECT_EQ(boxed, n);
  EXPECT_EQ(answer_is, n);
  EXPECT_EQ(wrong_rejected, n);
}

TEST(Math500, SolutionBoxIsTheGold) {
  // The MATH form: the gold is the last \boxed{} of the reference solution.
  std::ifstream in(shared_data("math500/test.jsonl"));
  std::string line;
  int n = 0, ok = 0;
  while (std::getline(in, line)) {
    Json row = Json::parse(line);
    ++n;
    ok += same(row["solution"].get<std::string>(), "\\boxed{" + row["answer"].get<std::string>() + "}");
  }
  std::printf("MATH-500 solution boxes: %d/%d\n", ok, n);
  EXPECT_GE(ok, n * 98 / 100);
}

TEST(Gsm8k, HashGoldWithThousandsSeparator) {
  // "#### 1,200" is 1200 whichever way the model writes it.
  EXPECT_TRUE(same("She sells 3*400 = <<3*400=1200>>1200.\n#### 1,200", "The answer is 1200."));
  EXPECT_TRUE(same("#### 1,200", "\\boxed{1,200}"));
  EXPECT_TRUE(same("#### 1200", "so she earns $1,200 in total"));
  EXPECT_FALSE(same("#### 1,200", "\\boxed{120}"));
  std::ifstream in(shared_data("gsm8k/test.jsonl"));
  std::string line;
  int n = 0, ok = 0;
  while (std::getline(in, line) && n < 300) {
    Json row = Json::parse(line);
    std::string gold = row["answer"].get<std::string>();
    std::string fin = gold.substr(gold.rfind("####") + 4);
    ++n;
    ok += same(gold, "Step by step... The answer is " + fin + ".");
  }
  EXPECT_EQ(ok, n);
}

TEST(MathExtract, Ladder) {
  // The last box wins over earlier numbers; <answer> tags win over everything.
  EXPECT_EQ(math::extract_answer("x=3 so \\boxed{5} and then 7")->text, "5");
  EXPECT_EQ(math::extract_answer("<think>\\boxed{1}</think><answer>\\boxed{2}</answer>")->text, "2");
  EXPECT_EQ(math::extract_answer("Final Answer: The final answer is $\\frac12$. I hope it is correct.")->text,
            "\\frac12");
  EXPECT_EQ(math::extract_answer("so the answer is 42.")->text, "42");
  // Boxes joined by "and" are one list answer; unrelated boxes are not.
  EXPECT_EQ(math::extract_answer("\\boxed{1} and \\boxed{2}")->text, "1, 2");
  EXPECT_EQ(math::extract_answer("\\boxed{1} no no no no no \\boxed{2}")->text, "2");
  // Last-number fallback is an option.
  math::ExtractOptions strict;
  strict.last_number = false;
  EXPECT_FALSE(math::extract_answer("I think it is 12 apples", strict));
  EXPECT_EQ(math::extract_answer("I think it is 12 apples")->text, "12");
  // A percent written after the box stays with it.
  EXPECT_EQ(math::extract_answer("$\\boxed{28}$ pct")->text, "28%");
}

TEST(MathExtract, NameFollowedByADotNumberEnds) {
  // A letter then a number that starts with its dot ("x.5", "v.2") once looped forever in the
  // last-number scan: the name is skipped, the scan goes on to the real number.
  const auto whole = math::extract_answer("x.5");  // returns (the whole short text, not a number)
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->text, "x.5");
  EXPECT_EQ(math::extract_answer("v.2 so 7")->text, "7");
  EXPECT_EQ(math::extract_answer("a.1 b.22 c.333 is 4")->text, "4");
}

TEST(MathEqual, NumbersAndForms) {
  EXPECT_TRUE(eq("\\frac{1}{2}", "0.5"));         // decimal vs fraction
  EXPECT_TRUE(eq("\\dfrac{3}{6}", "\\tfrac12"));  // both 1/2
  EXPECT_TRUE(eq("2\\frac{1}{2}", "5/2"));        // mixed number 2 + 1/2
  EXPECT_TRUE(eq("50\\%", "0.5"));                // percent: 50/100
  EXPECT_TRUE(eq("1.5 \\times 10^{3}", "1500"));  // scientific notation
  EXPECT_TRUE(eq("1.5e3", "1500"));
  EXPECT_TRUE(eq("90^\\circ", "90"));          // degrees
  EXPECT_TRUE(eq("10\\text{ cm}^2", "10"));    // units after a number
  EXPECT_TRUE(eq("2\\sqrt{2}", "\\sqrt{8}"));  // 2*1.41421 = 2.82843
  EXPECT_TRUE(eq("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"));
  EXPECT_TRUE(eq("-\\frac{10}{9}", "\\frac{-10}{9}"));
  EXPECT_TRUE(eq("10,\\!080", "10080"));  // MATH's thousands separator
  EXPECT_FALSE(eq("4", "4\\sqrt{2}"));
  EXPECT_FALSE(eq("\\frac{1}{3}", "0.33"));         // rounded to 6 places: 0.333333 != 0.33
  EXPECT_FALSE(eq("2", "\\frac{1+\\sqrt{5}}{2}"));  // 2 vs 1.618
}

TEST(MathEqual, SymbolicAtRandomPoints) {
  EXPECT_TRUE(eq("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}"));
  EXPECT_TRUE(eq("\\tan^2 y + 1", "\\sec^2 y"));  // an identity, no CAS needed
  EXPECT_TRUE(eq("(x+1)^2", "x^2+2x+1"));
  EXPECT_FALSE(eq("x+2n+1", "x+1"));
  EXPECT_FALSE(eq("f(x)", "f(y)"));  // strict: different variables
  math::EqualOptions loose;
  loose.strict = false;
  EXPECT_TRUE(eq("f(x)", "f(y)", loose));
}

TEST(MathEqual, Structures) {
  EXPECT_TRUE(eq("(1, 2)", "(1,2)"));
  EXPECT_FALSE(eq("(1, 2)", "(2, 1)"));         // tuples are ordered
  EXPECT_TRUE(eq("\\{1, 2\\}", "\\{2, 1\\}"));  // sets are not
  EXPECT_TRUE(eq("1, 2, 3", "3, 2, 1"));
  EXPECT_TRUE(eq("[0, 1)", "[0,1)"));
  EXPECT_FALSE(eq("(0, 9)", "[0, 9)"));  // open vs closed end
  EXPECT_TRUE(eq("(-\\infty, 2] \\cup (3, \\infty)", "(3, \\infty) \\cup (-\\infty, 2]"));
  EXPECT_TRUE(
      eq("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}"));
  EXPECT_FALSE(
      eq("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}"));
  EXPECT_TRUE(eq("1 \\pm \\sqrt{2}", "\\{1+\\sqrt{2}, 1-\\sqrt{2}\\}"));
}

TEST(MathEqual, RelationsAndEquations) {
  EXPECT_TRUE(eq("x = 3", "3"));                                            // a predicted equation: its right side
  EXPECT_TRUE(eq("k = 3", "3"));                                            // a gold assignment likewise
  EXPECT_FALSE(eq("2x + 1 = 3", "3"));                                      // not an assignment
  EXPECT_TRUE(eq("2x + 4y - 3 = 0", "y = -\\frac{1}{2}x + \\frac{3}{4}"));  // same line, factor 4
  EXPECT_TRUE(eq("x < 1", "-x > -1"));                                      // both say 1 - x > 0
  EXPECT_FALSE(eq("x < 1", "x > -1"));
  EXPECT_TRUE(eq("-2 \\le x \\le 7", "[-2, 7]"));  // gold inequality vs predicted interval
  EXPECT_FALSE(eq("-2 < x \\le 7", "[-2, 7]"));
}

TEST(MathReward, ChoiceAndStringsAndSkip) {
  EXPECT_TRUE(same("C", "The correct option is (C) because ... so the answer is C."));
  EXPECT_FALSE(same("C", "The answer is B."));
  EXPECT_TRUE(same("\\text{Evelyn}", "\\boxed{\\text{Evelyn}}"));
  EXPECT_TRUE(same("\\text{odd}", "\\boxed{odd}"));
  // A hostile "answer" does not hang or crash the parser.
  std::string deep(5000, '(');
  EXPECT_FALSE(same("1", "\\boxed{" + deep + "}"));
  std::string nested;
  for (int i = 0; i < 300; ++i) nested += "\\frac{1}{";
  EXPECT_FALSE(same("2", "\\boxed{" + nested + "}"));
}
