// The eval and rejection_sample stages data-parallel (2 Gloo ranks via `r1kit launch`): each
// rank samples its share of the prompts (per-prompt seeds, so a prompt's samples do not
// depend on which rank drew them), the tallies and kept samples are gathered, and rank 0
// writes. Same model, same recipe: 2 ranks must write the same eval numbers and the same
// rejection-sampled dataset, row for row, as 1 rank.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "policy/pretrained.h"
#include "src/bpe_trainer.h"
#include "src/jsonl.h"
#include "src/tokenizer.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// A tiny random qwen3_moe with its tokenizer, 12 prompts, and an eval + rejection_sample recipe
// whose 5-prompt batches split unevenly over 2 ranks.
std::string make_recipe(const fs::path& dir) {
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back(std::to_string(i) + "+2 <think> </think> <answer> </answer>");
  BpeTrainerOptions t;
  t.vocab_size = 280;
  t.special_tokens = {"<|endoftext|>", "<think>", "</think>", "<answer>", "</answer>"};
  const Tokenizer tok = train_bpe(texts, t);
  policy::ModelConfig c;
  c.model_type = "qwen3_moe";
  c.vocab_size = tok.vocab_size();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.qk_norm = true;  // qwen3_moe always has q/k norms
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 16;
  c.eos_token_ids = {*tok.token_to_id("<|endoftext|>")};
  policy::save_pretrained(*policy::create_model(c, 11), (dir / "model").string());
  tok.save((dir / "model" / "tokenizer.json").string());
  std::vector<Json> rows;
  for (int i = 0; i < 12; ++i) rows.push_back({{"prompt", std::to_string(i) + "+2"}, {"answer", std::to_string(i + 2)}});
  write_jsonl_atomic((dir / "prompts.jsonl").string(), rows);
  const Json rewards = Json::array({{{"name", "tag_count"}}, {{"name", "math"}}});
  const Json recipe = {{"stages", Json::array({
      {{"name", "eval"}, {"type", "eval"}, {"models", Json::array({{{"name", "m"}, {"model", (dir / "model").string()}}})},
       {"data", (dir / "prompts.jsonl").string()}, {"num_samples", 3}, {"max_new_tokens", 12}, {"temperature", 1.0},
       {"rewards", rewards}, {"log_samples", 12}, {"device", "cpu"}},
      {{"name", "traces"}, {"type", "rejection_sample"}, {"model", (dir / "model").string()},
       {"data", (dir / "prompts.jsonl").string()}, {"num_samples", 3}, {"max_new_tokens", 12},
       {"min_rewards", {{"tag_count", 0.0}}}, {"drop_truncated", false}, {"dedupe", false}, {"prompts_per_batch", 5},
       {"rewards", rewards}, {"device", "cpu"}}})}};
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
  const Json m1 = read_json_file(one + "/manifest.json")["stages"]["traces"]["summary"];
  const Json m2 = read_json_file(two + "/manifest.json")["stages"]["traces"]["summary"];
  for (const char* key : {"samples", "passed", "kept", "prompts_with_a_kept_sample"}) EXPECT_EQ(m1[key], m2[key]) << key;
}

}  // namespace
}  // namespace r1kit
