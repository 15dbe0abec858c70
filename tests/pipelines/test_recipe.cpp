// The recipe runner checks the WHOLE recipe before any stage runs (pipelines/recipe.h): a
// mistake in the last stage of three (an unknown key, a bad enum, a bad {"from"}, a missing
// data file, an unknown reward) ends `r1kit run` with one line naming the file, the stage and
// the key, before the first stage has trained or written anything. And every recipe shipped
// under examples/ passes the same checks.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "pipelines/recipe.h"
#include "pipelines/stage.h"
#include "src/files.h"
#include "src/jsonl.h"
#include "tests/grpo_fixture.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::Outcome;
using testing::run_r1kit;
using testing::TempDir;

// Three real stages: sft pretrains a tiny model from nothing, grpo trains it, eval scores
// both. Stage 3 is the one each case breaks.
Json three_stages(const TempDir& dir) {
  std::vector<Json> text, prompts;
  for (int i = 0; i < 40; ++i) text.push_back({{"text", std::to_string(i) + "+1=" + std::to_string(i + 1)}});
  for (int i = 0; i < 8; ++i)
    prompts.push_back({{"prompt", std::to_string(i) + "+1"}, {"answer", std::to_string(i + 1)}});
  write_jsonl_atomic(dir / "text.jsonl", text);
  write_jsonl_atomic(dir / "prompts.jsonl", prompts);
  const Json model_config = {{"model_type", "qwen2"},        {"hidden_size", 32},        {"intermediate_size", 64},
                             {"num_hidden_layers", 1},       {"num_attention_heads", 2}, {"num_key_value_heads", 1},
                             {"max_position_embeddings", 64}};
  return {{"stages",
           {{{"name", "base"},
             {"type", "sft"},
             {"model_config", model_config},
             {"tokenizer_vocab_size", 280},
             {"data", dir / "text.jsonl"},
             {"seq_len", 16},
             {"batch_size", 4},
             {"max_steps", 20},
             {"device", "cpu"}},
            {{"name", "zero"},
             {"type", "grpo"},
             {"model", {{"from", "base"}}},
             {"data", dir / "prompts.jsonl"},
             {"prompts_per_step", 2},
             {"num_generations", 2},
             {"max_steps", 2},
             {"max_completion_length", 8},
             {"learning_rate", 1e-4},
             {"device", "cpu"}},
            {{"name", "final"},
             {"type", "eval"},
             {"models", {"base", "zero"}},
             {"data", dir / "prompts.jsonl"},
             {"num_samples", 2},
             {"max_new_tokens", 8},
             {"device", "cpu"}}}}};
}

// Writes the recipe with `change` applied to stage `stage` (a JSON merge patch), runs it, and
// checks: non-zero exit, fast, ONE line on stderr naming the file, stage and key, no
// backtrace, and nothing trained (no model, no checkpoint, no metrics).
void expect_rejected(const Json& change, const std::string& key, int stage = 2) {
  SCOPED_TRACE(change.dump());
  TempDir dir;
  Json recipe = three_stages(dir);
  recipe["stages"][stage].merge_patch(change);
  const std::string path = dir / "recipe.json";
  std::ofstream(path) << recipe.dump(2);
  const std::string run = dir / "run";
  const Outcome o = run_r1kit("run '" + path + "' --out '" + run + "'", dir / "err.txt");
  EXPECT_NE(o.rc, 0);
  EXPECT_LT(o.seconds, 2.0) << "the recipe must be rejected before any stage runs";
  const std::string stage_name = recipe["stages"][stage]["name"];
  EXPECT_NE(o.err.find(path + ": stage '" + stage_name + "': " + key), std::string::npos) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << "one line: " << o.err;
  EXPECT_EQ(o.err.find("internal error"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("Exception raised from"), std::string::npos) << o.err;  // a c10 backtrace
  EXPECT_FALSE(fs::exists(fs::path(run) / "models")) << "a stage ran";
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints")) << "a stage ran";
  EXPECT_FALSE(fs::exists(fs::path(run) / "base")) << "a stage ran";
}

TEST(Recipe, UnknownKeyInTheLastStageStopsTheRunBeforeItStarts) {
  expect_rejected({{"temprature", 0.6}}, "temprature: unknown key");
}

TEST(Recipe, BadEnumInTheLastStage) {
  // eval has no enum: the last stage becomes a second grpo stage (null deletes a key).
  const Json grpo = {{"type", "grpo"},
                     {"models", nullptr},
                     {"num_samples", nullptr},
                     {"max_new_tokens", nullptr},
                     {"model", {{"from", "zero"}}},
                     {"loss_type", "ppo"}};
  expect_rejected(grpo, "loss_type 'ppo' is not one of grpo, bnpo, dapo, dr_grpo");
  expect_rejected({{"lr_scheduler_type", "exponential"}}, "lr_scheduler_type 'exponential' is not one of", 1);
}

TEST(Recipe, BadFromInTheLastStage) {
  expect_rejected({{"models", {"base", "later"}}}, "models[1]: {\"from\": \"later\"} names no earlier stage");
  expect_rejected({{"data", {{"from", "zero"}}}}, "data: stage 'zero' (grpo) writes no dataset");
}

TEST(Recipe, MissingDataFileInTheLastStage) {
  expect_rejected({{"data", "/nonexistent/held_out.jsonl"}}, "data: /nonexistent/held_out.jsonl does not exist");
}

TEST(Recipe, UnknownRewardInTheLastStage) {
  expect_rejected({{"rewards", {{{"name", "maths"}}}}}, "rewards[0].name: unknown reward 'maths'");
}

TEST(Recipe, UnknownStageTypeListsTheRegisteredOnes) {
  expect_rejected({{"type", "ppo"}}, "type: 'ppo' is not a stage type (known: " + pipelines::stage_type_names() + ")");
  EXPECT_NE(pipelines::stage_type_names().find("grpo"), std::string::npos);
}

TEST(Recipe, GrpoRangeErrorsNameTheKey) {
  expect_rejected({{"temperature", 0}}, "temperature must be > 0 in grpo", 1);
  expect_rejected({{"learning_rate", -1}}, "learning_rate must be > 0, got -1", 1);
  expect_rejected({{"num_generations", 1}}, "num_generations must be >= 2", 1);
  expect_rejected({{"max_kv_tokens", -5}}, "max_kv_tokens must be >= 0, got -5", 1);
  expect_rejected({{"kv_block_size", 0}}, "kv_block_size must be positive, got 0");
}

TEST(Recipe, ModelConfigOfAFreshModelIsCheckedUpFront) {
  expect_rejected({{"model_config", {{"model_type", "gpt9"}}}}, "model_config.model_type is not known", 0);
}

TEST(Recipe, ResumeRevalidates) {
  // A run whose recipe was fine, resumed with a broken override: rejected before the
  // finished stages are even looked at.
  TempDir dir;
  Json recipe = three_stages(dir);
  recipe["stages"] = Json::array({recipe["stages"][0]});
  recipe["stages"][0]["max_steps"] = 2;
  const std::string path = dir / "recipe.json";
  std::ofstream(path) << recipe.dump(2);
  const std::string run = dir / "run";
  ASSERT_EQ(run_r1kit("run '" + path + "' --out '" + run + "'", dir / "err.txt").rc, 0);
  const Outcome o = run_r1kit("run '" + path + "' --out '" + run + "' --resume --set base.seq_len=0", dir / "err2.txt");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("stage 'base': seq_len must be positive"), std::string::npos) << o.err;
}

TEST(Recipe, EmptyOrMalformedRecipe) {
  TempDir dir;
  for (const auto& [text, error] : std::vector<std::pair<std::string, std::string>>{
           {R"({"stages": []})", "stages is empty"},
           {R"({"stage": []})", "expected {\"stages\": [...]}"},
           {R"({"stages": [{"type": "sft"}]})", "stages[0].name is required"},
           {R"({"stages": [], "notes": 1})", "notes: unknown key"}}) {
    SCOPED_TRACE(text);
    std::ofstream(dir / "r.json") << text;
    pipelines::RunArgs args;
    args.recipe = dir / "r.json";
    args.out = dir / "run";
    try {
      pipelines::validate_recipe(args);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(error), std::string::npos) << e.what();
    }
  }
}

TEST(Recipe, EveryExampleRecipeValidates) {
  // Paths in the examples are relative to the repository root.
  const fs::path cwd = fs::current_path();
  fs::current_path(R1KIT_SOURCE_DIR);
  TempDir out;
  int checked = 0;
  for (const std::string& name : list_dir("examples/recipes")) {  // not std::filesystem's: src/files.h
    if (fs::path(name).extension() != ".json") continue;
    SCOPED_TRACE(name);
    pipelines::RunArgs args;
    args.recipe = "examples/recipes/" + name;
    args.out = out / "run";
    EXPECT_NO_THROW(pipelines::validate_recipe(args));
    ++checked;
  }
  // And the check can fail: the demo with one broken option is rejected.
  pipelines::RunArgs broken;
  broken.recipe = "examples/recipes/r1_tiny.json";
  broken.out = out / "run";
  broken.sets = {"eval_final.maj_k=100"};
  EXPECT_THROW(pipelines::validate_recipe(broken), Error);
  fs::current_path(cwd);
  EXPECT_GE(checked, 2);
}

// The demo's task data (examples/tasks/sums.py): the held-out questions are in neither the
// pretraining text nor the RL prompts, and every eval difficulty bucket is filled.
TEST(Recipe, DemoHeldOutQuestionsAreNeverTrainedOn) {
  const std::string dir = std::string(R1KIT_SOURCE_DIR) + "/examples/tasks/sums/";
  std::set<std::string> trained;
  for (const Json& row : read_jsonl(dir + "rl.jsonl")) trained.insert(row["prompt"].get<std::string>());
  std::string pretrain;
  for (const Json& row : read_jsonl(dir + "pretrain.jsonl")) pretrain += row["text"].get<std::string>() + "\n";
  std::map<int64_t, int> per_difficulty;
  for (const Json& row : read_jsonl(dir + "eval.jsonl")) {
    const std::string q = row["prompt"].get<std::string>();
    EXPECT_EQ(trained.count(q), 0u) << q;
    EXPECT_EQ(pretrain.find("Q: " + q + " sum="), std::string::npos) << q;
    ++per_difficulty[row["difficulty"].get<int64_t>()];
  }
  EXPECT_EQ(per_difficulty, (std::map<int64_t, int>{{1, 20}, {2, 20}, {3, 20}, {4, 20}, {5, 20}}));
  EXPECT_GT(trained.size(), 1000u);
}

}  // namespace
}  // namespace r1kit
