// The rejection_sample stage's filters on a tiny random policy, in process: greedy draws one
// sample per prompt; near-greedy sampling (T = 1e-4) makes every sample of a prompt identical,
// so dedupe keeps exactly one per prompt (and all N without it); max_per_prompt caps what passes; a threshold the
// untrained policy never reaches keeps nothing; a threshold on a reward the stage does not have is an error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "pipelines/recipe.h"
#include "src/jsonl.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// Runs one rejection_sample stage with `options` over 6 prompts; returns the kept rows.
std::vector<Json> sample(const fs::path& dir, const std::string& name, const Json& options) {
  if (!fs::exists(dir / "model")) {
    testing::save_tiny_policy(dir / "model");
    std::vector<Json> rows;
    for (int i = 0; i < 6; ++i)
      rows.push_back({{"prompt", std::to_string(i) + "+1"}, {"answer", std::to_string(i + 1)}});
    write_jsonl_atomic((dir / "prompts.jsonl").string(), rows);
  }
  Json stage = {{"name", "traces"},
                {"type", "rejection_sample"},
                {"model", (dir / "model").string()},
                {"data", (dir / "prompts.jsonl").string()},
                {"num_samples", 4},
                {"max_new_tokens", 8},
                {"rewards", Json::array({{{"name", "tag_count"}}, {{"name", "math"}}})},
                {"device", "cpu"}};
  stage.update(options);
  const std::string recipe = (dir / (name + ".json")).string();
  std::ofstream(recipe) << Json{{"stages", Json::array({stage})}}.dump();
  RunArgs args;
  args.recipe = recipe;
  args.out = (dir / name).string();
  EXPECT_EQ(run_recipe(args), 0);
  return read_jsonl((dir / name / "data" / "traces.jsonl").string());
}

std::map<int64_t, int> per_prompt(const std::vector<Json>& rows) {
  std::map<int64_t, int> n;
  for (const Json& r : rows) ++n[r["prompt_index"].get<int64_t>()];
  return n;
}

TEST(RejectionSample, FiltersThresholdsDedupeAndPerPromptCap) {
  const fs::path dir = testing::scratch_dir("rejection_sample");
  const Json keep_all = {{"min_rewards", {{"tag_count", 0.0}}}, {"drop_truncated", false}};

  // Greedy draws one sample per prompt (N more would all be the same).
  Json greedy = keep_all;
  greedy["temperature"] = 0.0;
  EXPECT_EQ(sample(dir, "greedy", greedy).size(), 6u);
  // Near-greedy keeps N samples, all the same: dedupe keeps one of each.
  greedy["temperature"] = 1e-4;
  greedy["dedupe"] = false;
  EXPECT_EQ(sample(dir, "greedy_all", greedy).size(), 24u);  // 6 prompts x 4 identical samples
  greedy["dedupe"] = true;
  const std::vector<Json> one_each = sample(dir, "greedy_dedupe", greedy);
  ASSERT_EQ(one_each.size(), 6u);
  for (const auto& [prompt, n] : per_prompt(one_each)) EXPECT_EQ(n, 1) << prompt;

  Json capped = keep_all;
  capped["max_per_prompt"] = 2;
  capped["temperature"] = 1.0;
  const std::vector<Json> two_each = sample(dir, "capped", capped);
  ASSERT_EQ(per_prompt(two_each).size(), 6u);
  for (const auto& [prompt, n] : per_prompt(two_each)) EXPECT_EQ(n, 2) << prompt;
  for (const Json& r : two_each) {
    EXPECT_EQ(r["stage"], "traces");
    EXPECT_TRUE(r["rewards"].contains("tag_count") && r["rewards"].contains("math"));
    EXPECT_EQ(r["prompt"], r["source"]["prompt"].get<std::string>());  // template "{prompt}"
  }

  // An untrained policy never writes the right sum in <answer> tags.
  EXPECT_TRUE(sample(dir, "strict", {{"min_rewards", {{"math", 1.0}}}}).empty());
  EXPECT_THROW(
      {
        try {
          sample(dir, "unknown", {{"min_rewards", {{"format", 1.0}}}});
        } catch (const Error& e) {
          EXPECT_NE(
              std::string(e.what()).find("stage 'traces': min_rewards 'format' is not one of the stage's rewards"),
              std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
}

}  // namespace
}  // namespace r1kit::pipelines
