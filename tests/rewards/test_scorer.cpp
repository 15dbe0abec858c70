// Registry and Scorer: duplicate names refused, unknown names listed, unknown options
// rejected by key, weights combined, skips left out, timeouts enforced.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "rewards/scorer.h"
#include "src/error.h"
#include "src/thread_pool.h"

using namespace r1kit;
using namespace r1kit::rewards;

namespace {
struct Constant : Reward {
  std::optional<double> v;
  double sleep_s = 0;
  RewardResult score(const RewardInput&) const override {
    if (sleep_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
    return v ? RewardResult::make(*v, "const") : RewardResult::skip("skip");
  }
};
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Registry, RefusesDuplicatesAndListsKnownNames) {
  EXPECT_TRUE(RewardRegistry::instance().contains("math"));
  std::string dup =
      message_of([] { RewardRegistry::instance().add("math", [](JsonFields&) { return std::unique_ptr<Reward>(); }); });
  EXPECT_NE(dup.find("'math' is registered twice"), std::string::npos) << dup;
  std::string unknown = message_of([] { Scorer::from_spec("maths"); });
  EXPECT_NE(unknown.find("unknown reward 'maths'"), std::string::npos) << unknown;
  for (const char* name :
       {"code", "format", "language", "length", "math", "plugin", "process", "repetition", "tag_count"})
    EXPECT_NE(unknown.find(name), std::string::npos) << name << " not listed in: " << unknown;
}

TEST(Scorer, UnknownOptionIsAnErrorNamingTheKey) {
  std::string m =
      message_of([] { Scorer::from_json(Json::parse(R"([{"name": "math", "wieght": 2}])"), "recipe.json: rewards"); });
  EXPECT_EQ(m, "recipe.json: rewards[0].wieght: unknown key");
  std::string t = message_of([] { Scorer::from_json(Json::parse(R"([{"name": "length", "unit": "tokens"}])"), "r"); });
  EXPECT_NE(t.find("r[0].unit"), std::string::npos) << t;
}

TEST(Scorer, WeightedSumSkipsAndWhy) {
  // math (weight 1) right, format (weight 0.5) wrong: 1*1 + 0.5*0 = 1.
  Scorer s = Scorer::from_spec("math:1,format:0.5");
  Json row = {{"answer", "\\frac{1}{2}"}};
  RewardInput in;
  in.completion = "The answer is $0.5$.";
  in.fields = &row;
  RewardResult r = s.score(in);
  ASSERT_TRUE(r.value);
  EXPECT_DOUBLE_EQ(*r.value, 1.0);
  EXPECT_EQ(r.parts.at("math"), 1.0);
  EXPECT_EQ(r.parts.at("format"), 0.0);
  EXPECT_NE(r.why.find("math=1"), std::string::npos) << r.why;
  // No gold: math skips, format still scores -> value 0.5 * 0.
  Json empty = Json::object();
  in.fields = &empty;
  r = s.score(in);
  ASSERT_TRUE(r.value);
  EXPECT_EQ(*r.value, 0.0);
  EXPECT_EQ(r.parts.count("math"), 0u);
  // Every reward skips -> the row is skipped.
  Scorer only_math = Scorer::from_spec("math");
  EXPECT_FALSE(only_math.score(in).value);
}

TEST(Scorer, BatchOnThreadPoolMatchesOneByOne) {
  Scorer s = Scorer::from_spec("math,tag_count:0.5");
  std::vector<Json> rows;
  std::vector<std::string> completions;
  for (int i = 0; i < 64; ++i) {
    rows.push_back({{"answer", std::to_string(i)}});
    completions.push_back("<think>t</think><answer>\\boxed{" + std::to_string(i % 2 ? i : i + 1) + "}</answer>");
  }
  std::vector<RewardInput> inputs(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    inputs[i].completion = completions[i];
    inputs[i].fields = &rows[i];
  }
  ThreadPool pool(4);
  auto batch = s.score_batch(inputs, &pool);
  for (size_t i = 0; i < rows.size(); ++i) {
    // odd i: right answer (1) + 0.5 * all four tags (1) = 1.5; even i: 0 + 0.5.
    EXPECT_DOUBLE_EQ(*batch[i].value, i % 2 ? 1.5 : 0.5) << i;
    EXPECT_DOUBLE_EQ(*batch[i].value, *s.score(inputs[i]).value);
  }
}

TEST(Scorer, SlowRewardTimesOutAsZero) {
  Scorer s;
  auto slow = std::make_unique<Constant>();
  slow->v = 1.0;
  slow->sleep_s = 0.3;
  slow->set_timeout_s(0.05);
  s.add("slow", 1.0, std::move(slow));
  RewardInput in;
  RewardResult r = s.score(in);
  ASSERT_TRUE(r.value);
  EXPECT_EQ(*r.value, 0.0);
  EXPECT_NE(r.why.find("timeout"), std::string::npos) << r.why;
}

// Found by fuzz_math (tests/fuzz/regressions/fuzz_math): the math reward's why quotes the
// extracted answer, raw bytes and all; a Scorer's why is always valid UTF-8.
TEST(Scorer, WhyIsValidUtf8WhenTheCompletionIsNot) {
  const Scorer s = Scorer::from_spec("math");
  const std::string completion =
      "$2\xf3"
      "021$";
  const Json row = {{"answer", "$\\pm 2021$"}};
  RewardInput in;
  in.completion = completion;
  in.fields = &row;
  const RewardResult r = s.score(in);
  EXPECT_NO_THROW((void)Json(r.why).dump()) << r.why;  // nlohmann's strict dump throws on invalid UTF-8
  EXPECT_NE(r.why.find("\xEF\xBF\xBD"), std::string::npos) << "the byte is replaced by U+FFFD: " << r.why;
}

TEST(Scorer, NonFiniteValuesAreErrorsAndFailuresAreCounted) {
  Scorer s;
  auto nan = std::make_unique<Constant>();
  nan->v = std::nan("");
  s.add("nan", 1.0, std::move(nan));
  RewardInput in;
  const RewardResult r = s.score(in);
  ASSERT_TRUE(r.value) << "an error is scored 0, not skipped";
  EXPECT_EQ(*r.value, 0.0);
  EXPECT_EQ(r.errored_rewards, std::vector<std::string>{"nan"});
  EXPECT_NE(r.why.find("returned nan"), std::string::npos) << r.why;
  RewardTally t;
  s.tally({r, r}, t);
  EXPECT_EQ(t.errors, std::vector<double>{2});
  EXPECT_EQ(RewardTally::from_flat(t.flat(), 1).errors, t.errors);
  EXPECT_NE(s.too_many_failures(t, 2, 0.1).find("reward 'nan' failed on 2 of 2 completions"), std::string::npos);
}
