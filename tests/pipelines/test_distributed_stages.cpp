// The eval and rejection_sample stages data-parallel (2 Gloo ranks via `r1kit launch`): each
// rank samples its share of the prompts (per-prompt seeds, so a prompt's samples do not
// depend on which rank drew them), the eval tallies are gathered, each rank writes its kept
// samples to a part file and rank 0 merges them. Same model, same recipe: 2 ranks must write
// the same eval numbers and the same rejection-sampled dataset, row for row, as 1 rank, and
// leave no part file behind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "src/jsonl.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// A tiny random qwen3_moe with its tokenizer, 12 prompts, and an eval + rejection_sample recipe
// whose 5-prompt batches split unevenly over 2 ranks.
std::string make_recipe(const fs::path& dir) {
  testing::save_tiny_policy(dir / "model", /*seed=*/11);
  std::vector<Json> rows;
  for (int i = 0; i < 12; ++i)
    rows.push_back({{"prompt", std::to_string(i) + "+2"}, {"answer", std::to_string(i + 2)}});
  write_jsonl_atomic((dir / "prompts.jsonl").string(), rows);
  const Json rewards = Json::array({{{"name", "tag_count"}}, {{"name", "math"}}});
  const Json recipe = {
      {"stages", Json::array({{{"name", "eval"},
                               {"type", "eval"},
                               {"models", Json::array({{{"name", "m"}, {"model", (dir / "model").string()}}})},
                               {"data", (dir / "prompts.jsonl").string()},
                               {"num_samples", 3},
                               {"max_new_tokens", 12},
                               {"temperature", 1.0},
                               {"rewards", rewards},
                               {"log_samples", 12},
                               {"device", "cpu"}},
                              {{"name", "traces"},
                               {"type", "rejection_sample"},
                               {"model", (dir / "model").string()},
                               {"data", (dir / "prompts.jsonl").string()},
                               {"num_samples", 3},
                               {"max_new_tokens", 12},
                               {"min_rewards", {{"tag_count", 0.0}}},
                               {"drop_truncated", false},
                               {"dedupe", false},
                               {"prompts_per_batch", 5},
                               {"rewards", rewards},
                               {"device", "cpu"}}})}};
  const std::string path = (dir / "recipe.json").string();
  std::ofstream(path) << recipe.dump(2);
  return path;
}

int run(const std::string& args, const std::string& log) {
  const std::string cmd = std::string(R1KIT_BINARY_DIR) + "/r1kit " + args + " > '" + log + "' 2>&1";
  return std::system(cmd.c_str());
}

TEST(DistributedStages, EvalAndRejectionSampleOnTwoRanksEqualOneRank) {
  const fs::path dir = testing::scratch_dir("distributed_stages");
  const std::string recipe = make_recipe(dir);
  const std::string one = (dir / "one").string(), two = (dir / "two").string();
  ASSERT_EQ(run("run " + recipe + " --out " + one, one + ".log"), 0);
  ASSERT_EQ(run("launch --nproc 2 -- run " + recipe + " --out " + two, two + ".log"), 0);

  const Json e1 = read_json_file(one + "/eval/eval.json")["models"]["m"];
  const Json e2 = read_json_file(two + "/eval/eval.json")["models"]["m"];
  for (const char* key : {"accuracy", "maj_at_k", "mean_completion_tokens", "n"}) {
    EXPECT_EQ(e1[key], e2[key]) << key;
  }
  for (const auto& [name, v] : e1["rewards"].items()) {
    EXPECT_NEAR(v.get<double>(), e2["rewards"][name].get<double>(), 1e-12) << name;
  }
  EXPECT_EQ(read_jsonl(one + "/eval/eval_samples.jsonl"), read_jsonl(two + "/eval/eval_samples.jsonl"));

  std::vector<Json> t1 = read_jsonl(one + "/data/traces.jsonl"), t2 = read_jsonl(two + "/data/traces.jsonl");
  ASSERT_EQ(t1.size(), 36u);  // 12 prompts x 3: every sample passes tag_count >= 0
  for (auto* rows : {&t1, &t2}) {
    for (Json& r : *rows) r.erase("source_model");  // the same path in both runs anyway
  }
  EXPECT_EQ(t1, t2);
  for (const char* part : {"/data/traces.jsonl.rank0", "/data/traces.jsonl.rank1"}) {
    EXPECT_FALSE(fs::exists(two + part)) << "part file left behind: " << part;
  }
  const Json m1 = read_json_file(one + "/manifest.json")["stages"]["traces"]["summary"];
  const Json m2 = read_json_file(two + "/manifest.json")["stages"]["traces"]["summary"];
  for (const char* key : {"samples", "passed", "kept", "prompts_with_a_kept_sample"})
    EXPECT_EQ(m1[key], m2[key]) << key;
}

}  // namespace
}  // namespace r1kit
