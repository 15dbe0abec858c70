// pipelines/completion_stats: the buckets are every value of the difficulty field in numeric
// order (a row without it is an error naming the file and line); per-bucket length and
// accuracy and the reflection share are counted from the completions and the checker's
// verdicts; the reflection patterns match case-insensitively; off options add nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "pipelines/completion_stats.h"
#include "pipelines/prompt_data.h"
#include "pipelines/scored_groups.h"
#include "src/bpe_trainer.h"
#include "src/distributed.h"
#include "src/error.h"
#include "tests/test_util.h"

namespace r1kit::pipelines {
namespace {

const Tokenizer& chars() {
  static const Tokenizer tok = [] {
    BpeTrainerOptions t;
    t.vocab_size = 260;
    return train_bpe({"a b c"}, t);
  }();
  return tok;
}

PromptData data_of(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream(path) << [&] {
    std::string all;
    for (const std::string& l : lines) all += l + "\n";
    return all;
  }();
  PromptOptions o;
  o.data = path;
  return PromptData(o, 1, chars());
}

// One completion of `row` with `tokens` tokens and `text`, judged `correct` by the checker.
void add_completion(ScoredGroups& g, const Json* row, int64_t tokens, const std::string& text, bool correct) {
  g.prompt_rows.push_back(row);
  g.prompt_texts.push_back("q");
  rollout::Rollout r;
  r.prompt_index = static_cast<int64_t>(g.prompt_rows.size()) - 1;
  r.completion_ids.assign(static_cast<size_t>(tokens), 7);
  r.text = text;
  g.rollouts.rows.push_back(r);
  rewards::RewardResult scored;
  scored.value = correct ? 1.0 : 0.0;
  scored.parts["math"] = correct ? 1.0 : 0.0;
  g.scored.push_back(scored);
}

const Json* row_with(const PromptData& data, const std::string& prompt) {
  for (const Json* row : data.rows(0, static_cast<int64_t>(data.size()))) {
    if ((*row)["prompt"] == prompt) return row;
  }
  throw std::logic_error("no row " + prompt);
}

TEST(CompletionStats, PatternsMatchAnywhereIgnoringCase) {
  EXPECT_TRUE(contains_any("3+4=8 Wait, check: 3+4=7", {"wait"}));
  EXPECT_TRUE(contains_any("RE-CHECK", {"wait", "re-check"}));
  EXPECT_FALSE(contains_any("3+4=7", {"wait"}));
  EXPECT_FALSE(contains_any("wait", {}));
  EXPECT_FALSE(contains_any("wai", {"wait"}));
}

TEST(CompletionStats, BucketsAreTheFieldsValuesInNumericOrder) {
  testing::TempDir dir;
  const PromptData data =
      data_of(dir.path + "/p.jsonl", {R"({"prompt": "a", "difficulty": 10})", R"({"prompt": "b", "difficulty": 2})",
                                      R"({"prompt": "c", "difficulty": 2})"});
  EXPECT_EQ(data.field_values("difficulty"), (std::vector<std::string>{"2", "10"}));
  const PromptData same =
      data_of(dir.path + "/s.jsonl", {R"({"prompt": "a", "difficulty": 2})", R"({"prompt": "b", "difficulty": 2.0})",
                                      R"({"prompt": "c", "difficulty": 2})"});
  EXPECT_EQ(same.field_values("difficulty"), (std::vector<std::string>{"2", "2.0"}));  // no bucket twice
  const PromptData words =
      data_of(dir.path + "/w.jsonl", {R"({"prompt": "a", "level": "hard"})", R"({"prompt": "b", "level": "easy"})"});
  EXPECT_EQ(words.field_values("level"), (std::vector<std::string>{"easy", "hard"}));
  try {
    CompletionStats(CompletionStatsOptions{.difficulty_field = "level"}, data);
    ADD_FAILURE() << "no error for rows without the field";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("p.jsonl:1: no field 'level'"), std::string::npos) << e.what();
  }
}

TEST(CompletionStats, CountsLengthAccuracyAndReflectionPerBucket) {
  testing::TempDir dir;
  const PromptData data = data_of(dir.path + "/p.jsonl",
                                  {R"({"prompt": "easy", "difficulty": 1})", R"({"prompt": "hard", "difficulty": 3})",
                                   R"({"prompt": "mid", "difficulty": 2})"});
  const rewards::Scorer scorer = rewards::Scorer::from_spec("math");
  CompletionStats stats({.difficulty_field = "difficulty", .reflection_patterns = {"wait"}}, data);
  ScoredGroups g;
  add_completion(g, row_with(data, "easy"), 4, "<answer>3</answer>", true);
  add_completion(g, row_with(data, "easy"), 6, "guess", false);
  add_completion(g, row_with(data, "hard"), 20, "1+2=4 WAIT, check: 1+2=3", true);
  add_completion(g, row_with(data, "hard"), 30, "1+2=3 wait", true);
  stats.add(g, scorer);
  const CompletionStats all = stats.over_ranks(distributed(), "test");  // one rank: the same sums

  std::map<std::string, double> m;
  all.add_metrics(m);
  EXPECT_DOUBLE_EQ(m.at("completion/reflection_share"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("completion/mean_length/difficulty=1"), 5.0);
  EXPECT_DOUBLE_EQ(m.at("accuracy/difficulty=1"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("completion/mean_length/difficulty=3"), 25.0);
  EXPECT_DOUBLE_EQ(m.at("accuracy/difficulty=3"), 1.0);
  EXPECT_EQ(m.count("completion/mean_length/difficulty=2"), 0u);  // no completion: a gap, not 0
  EXPECT_EQ(m.size(), 5u);

  Json entry = Json::object();
  all.add_to(entry);
  EXPECT_DOUBLE_EQ(entry["reflection_share"].get<double>(), 0.5);
  ASSERT_EQ(entry["by_difficulty"].size(), 2u);  // in bucket order, without the empty bucket
  EXPECT_EQ(entry["by_difficulty"][0]["value"], "1");
  EXPECT_EQ(entry["by_difficulty"][0]["completions"].get<int64_t>(), 2);
  EXPECT_EQ(entry["by_difficulty"][1]["value"], "3");
  EXPECT_DOUBLE_EQ(entry["by_difficulty"][1]["mean_completion_tokens"].get<double>(), 25.0);
}

TEST(CompletionStats, OffAddsNothing) {
  testing::TempDir dir;
  const PromptData data = data_of(dir.path + "/p.jsonl", {R"({"prompt": "a"})"});
  CompletionStats stats(CompletionStatsOptions{}, data);
  ScoredGroups g;
  add_completion(g, row_with(data, "a"), 4, "wait", true);
  stats.add(g, rewards::Scorer::from_spec("math"));
  std::map<std::string, double> m;
  stats.add_metrics(m);
  Json entry = Json::object();
  stats.add_to(entry);
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(entry.empty());
}

TEST(CompletionStats, AnEmptyPatternIsRefusedNamingTheKey) {
  const Json j = {{"reflection_patterns", {"wait", ""}}};
  JsonFields f(j, "recipe.json: stages[3]");
  CompletionStatsOptions o;
  try {
    read_completion_stats_options(f, o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stages[3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("reflection_patterns"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit::pipelines
