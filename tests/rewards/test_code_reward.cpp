// The `code` reward: HumanEval's 164 canonical solutions pass (and mostly fail with their
// last line removed), assert lists give partial credit, stdin/stdout cases compare exactly
// or whitespace-tolerantly, and code extraction takes the last fenced block.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "code_test_util.h"
#include "rewards/code_extract.h"
#include "rewards/code_reward.h"
#include "shared_data.h"
#include "src/thread_pool.h"

using namespace r1kit;
using namespace r1kit::rewards;

namespace {
std::vector<Json> humaneval() {
  std::string path = shared_data("HumanEval.jsonl.gz");
  std::vector<Json> rows;
  FILE* p = popen(("gzip -dc '" + path + "'").c_str(), "r");
  if (p == nullptr) return rows;
  std::string text;
  char buf[65536];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) text.append(buf, n);
  pclose(p);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(Json::parse(line));
  return rows;
}

std::vector<RewardResult> score_all(const Scorer& s, const std::vector<Json>& rows,
                                    const std::vector<std::string>& completions) {
  std::vector<RewardInput> inputs(rows.size());
  std::vector<std::string> prompts(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    prompts[i] = rows[i]["prompt"].get<std::string>();
    inputs[i].prompt = prompts[i];
    inputs[i].completion = completions[i];
    inputs[i].fields = &rows[i];
  }
  ThreadPool pool(0);
  set_sandbox_parallelism(std::max(4, pool.size()));
  return s.score_batch(inputs, &pool);
}
}  // namespace

TEST(CodeReward, HumanEvalCanonicalSolutionsPassAndTruncatedOnesFail) {
  std::vector<Json> rows = humaneval();
  ASSERT_EQ(rows.size(), 164u);
  Scorer s = code_scorer();
  std::vector<std::string> full, truncated;
  for (const auto& r : rows) {
    std::string sol = r["canonical_solution"].get<std::string>();
    full.push_back(r["prompt"].get<std::string>() + sol);
    // Drop the last non-empty line of the solution.
    std::string t = sol;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    size_t nl = t.rfind('\n');
    t = nl == std::string::npos ? "" : t.substr(0, nl + 1);
    truncated.push_back(r["prompt"].get<std::string>() + t + "\n");
  }
  auto ok = score_all(s, rows, full);
  int pass = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (ok[i].value && *ok[i].value == 1.0)
      ++pass;
    else
      ADD_FAILURE() << rows[i]["task_id"] << ": " << ok[i].why;
  }
  auto bad = score_all(s, rows, truncated);
  int zero = 0;
  for (const auto& r : bad) zero += r.value && *r.value == 0.0;
  std::printf("HumanEval: %d/164 canonical solutions score 1; %d/164 with the last line removed score 0\n", pass, zero);
  EXPECT_EQ(pass, 164);
  EXPECT_GE(zero, 140);  // "mostly": some last lines are redundant (a trailing comment, an else branch)
}

TEST(CodeReward, AssertListPartialCreditAndBinary) {
  // 2 of 3 asserts hold: partial credit 2/3, binary 0.
  Json row = {{"completion", "```python\ndef add(a, b):\n    return a + b if a < 10 else 0\n```"},
              {"tests", {"assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(10, 1) == 11"}}};
  auto partial = score_row(code_scorer(), row);
  ASSERT_TRUE(partial.value);
  EXPECT_NEAR(*partial.value, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(partial.parts.at("code.passed"), 2);
  auto binary = score_row(code_scorer(R"(, "partial_credit": false)"), row);
  EXPECT_EQ(*binary.value, 0.0);
}

TEST(CodeReward, StdinStdoutExactAndTolerant) {
  // Prints "3 \n" with a trailing space: tolerant passes, exact does not.
  Json row = {{"completion", "```python\na, b = map(int, input().split())\nprint(a + b, '')\n```"},
              {"tests", {{"inputs", {"1 2\n"}}, {"outputs", {"3\n"}}}}};
  EXPECT_EQ(*score_row(code_scorer(), row).value, 1.0);
  EXPECT_EQ(*score_row(code_scorer(R"(, "compare": "exact")"), row).value, 0.0);
  EXPECT_TRUE(outputs_match("1 2\n3\n", "1  2\n3", "tolerant"));
  EXPECT_FALSE(outputs_match("1 2\n", "1 2\n3\n", "tolerant"));  // too few lines fail
  EXPECT_FALSE(outputs_match("", "\n0\n", "tolerant"));
  EXPECT_TRUE(outputs_match("ok\n", "ok", "exact"));
}

TEST(CodeReward, NoTestsSkipsAndNoCodeScoresZero) {
  Json no_tests = {{"completion", "```python\nprint(1)\n```"}};
  EXPECT_FALSE(score_row(code_scorer(), no_tests).value);
  Json no_code = {{"completion", "I would write a loop."}, {"tests", {"assert f() == 1"}}};
  EXPECT_EQ(*score_row(code_scorer(R"(, "allow_unfenced": false)"), no_code).value, 0.0);
}

TEST(CodeExtract, LastFencedBlock) {
  EXPECT_EQ(*extract_code("```python\na=1\n```\ntext\n```python\nb=2\n```"), "b=2\n");
  EXPECT_EQ(*extract_code("<think>```python\nx\n```</think>```py\ny\n```"), "y\n");
  EXPECT_FALSE(extract_code("```cpp\nint x;\n```"));  // only another language
  EXPECT_FALSE(extract_code("no code", "python", /*allow_unfenced=*/false));
}

TEST(CodeReward, RefusesWithoutSandboxUnlessUnsafe) {
  // Only checkable where bwrap works: the refusal path is covered by the error text test.
  std::string why;
  if (!sandbox_available(&why)) {
    EXPECT_THROW(code_scorer(), r1kit::Error);
    EXPECT_NO_THROW(code_scorer(R"(, "unsafe_no_sandbox": true)"));
  } else {
    EXPECT_NO_THROW(code_scorer());
  }
}
