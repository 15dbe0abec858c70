// The GRPO stage end to end on a tiny MoE policy: outputs (metrics, TensorBoard, samples,
// checkpoints, manifest), and exact resume: a run killed with SIGKILL after its step-2
// checkpoint and resumed ends with the same weights (bitwise) and the same metrics rows as
// an uninterrupted run.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "pipelines/recipe.h"
#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "src/files.h"
#include "src/jsonl.h"
#include "src/safetensors.h"
#include "tests/grpo_fixture.h"
#include "tests/test_util.h"

extern char** environ;

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;
using testing::metric_rows;
using testing::slurp;

// A tiny qwen3_moe policy with its own tokenizer, a prompt set and a one-stage recipe.
std::string make_fixture(const fs::path& dir, int64_t max_steps, const Json& stage_overrides = Json::object()) {
  Json stage = {{"name", "zero"},
                {"type", "grpo"},
                {"prompt_template", "{prompt}="},
                {"prompts_per_step", 2},
                {"num_generations", 4},
                {"per_device_train_batch_size", 3},
                {"max_completion_length", 16},
                {"max_steps", max_steps},
                {"save_steps", 2},
                {"learning_rate", 1e-3},
                {"beta", 0.01},
                {"device", "cpu"},
                {"seed", 5},
                {"rewards", Json::array({{{"name", "tag_count"}}, {{"name", "math"}}})}};
  stage.update(stage_overrides);
  return testing::write_grpo_fixture(dir, /*prompts=*/10, stage);
}

TEST(GrpoTrainer, RunsAndWritesEveryOutput) {
  const fs::path dir = testing::scratch_dir("grpo_outputs");
  RunArgs args;
  args.recipe = make_fixture(dir, 4);
  args.out = (dir / "run").string();
  ASSERT_EQ(run_recipe(args), 0);
  const std::vector<Json> rows = read_jsonl((dir / "run" / "zero" / "metrics.jsonl").string());
  ASSERT_EQ(rows.size(), 4u);
  for (const char* key : {"reward/mean",
                          "reward/std",
                          "reward/tag_count",
                          "reward/math",
                          "accuracy",
                          "frac_zero_std_groups",
                          "completion/mean_length",
                          "completion/frac_truncated",
                          "clip/low_fraction",
                          "clip/high_fraction",
                          "kl",
                          "entropy",
                          "grad_norm",
                          "learning_rate",
                          "moe/load_max_over_mean",
                          "moe/load_max_over_mean/layer_0",
                          "moe/load_max_over_mean/layer_1",
                          "trained_groups",
                          "tokens_per_second",
                          "time/rollout",
                          "time/reward",
                          "time/reference",
                          "time/train"}) {
    EXPECT_TRUE(rows[3].contains(key)) << key;
  }
  EXPECT_EQ(rows[3]["step"], 4);
  EXPECT_GT(rows[3]["entropy"].get<double>(), 0.0);
  EXPECT_FALSE(read_jsonl((dir / "run" / "zero" / "samples.jsonl").string()).empty());
  // save_steps 2, keep 2: step-2 and step-4, each complete.
  EXPECT_EQ(list_dir((dir / "run" / "checkpoints" / "zero").string()), (std::vector<std::string>{"step-2", "step-4"}));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "optimizer.pt", "trainer_state.json",
                        "reference/model.safetensors"}) {
    EXPECT_TRUE(fs::exists(dir / "run" / "checkpoints" / "zero" / "step-4" / f)) << f;
  }
  bool events = false;
  for (const auto& n : list_dir((dir / "run" / "zero").string())) events |= n.rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(events);
  const Json manifest = read_json_file((dir / "run" / "manifest.json").string());
  EXPECT_EQ(manifest["stages"]["zero"]["state"], "done");
  EXPECT_TRUE(fs::exists(dir / "run" / "models" / "zero" / "model.safetensors"));
}

// A learning rate far too high (1e30, issue 12): step 1 blows the weights up, every later
// gradient is NaN. Those updates are skipped, the third in a row stops the stage with an
// error naming it, the manifest says "failed", and no model with a non-finite weight is
// written anywhere (checkpoints hold only finite weights; no final model).
TEST(GrpoNonFinite, HugeLearningRateStopsBeforeANanModelIsSaved) {
  const fs::path dir = testing::scratch_dir("grpo_nonfinite");
  RunArgs args;
  args.recipe = make_fixture(dir, 20, {{"learning_rate", 1e30}, {"save_steps", 1}, {"beta", 0.0}});
  args.out = (dir / "run").string();
  try {
    run_recipe(args);
    FAIL() << "the run completed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero: step 4: the gradient norm was not finite"), std::string::npos)
        << e.what();
  }
  const Json manifest = read_json_file((dir / "run" / "manifest.json").string());
  EXPECT_EQ(manifest["stages"]["zero"]["state"], "failed");
  EXPECT_FALSE(fs::exists(dir / "run" / "models" / "zero"));
  const std::vector<Json> rows = read_jsonl((dir / "run" / "zero" / "metrics.jsonl").string());
  ASSERT_EQ(rows.size(), 3u);  // step 1 trained, steps 2-3 skipped, step 4 stopped
  EXPECT_EQ(rows[2]["nonfinite_skipped_steps"], 2);
  // And a model that did diverge (a NaN weight) is refused by `r1kit generate`, naming it.
  {
    auto broken = policy::load_pretrained((dir / "model").string(), resolve_device("cpu"));
    c10::InferenceMode guard;
    broken->parameters()[3].view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
    policy::save_pretrained(*broken, (dir / "nan_model").string());
    fs::copy_file(dir / "model" / "tokenizer.json", dir / "nan_model" / "tokenizer.json");
    const testing::Outcome o = testing::run_r1kit(
        "generate --model '" + (dir / "nan_model").string() + "' --prompt '1+1'", (dir / "generate.err").string());
    EXPECT_NE(o.rc, 0);
    EXPECT_NE(o.err.find("has non-finite values (a diverged model); refusing to sample from it"), std::string::npos)
        << o.err;
  }
  for (const auto& step : list_dir((dir / "run" / "checkpoints" / "zero").string())) {
    SCOPED_TRACE(step);
    auto model = policy::load_pretrained((dir / "run" / "checkpoints" / "zero" / step).string(), resolve_device("cpu"));
    for (const at::Tensor& p : model->parameters()) EXPECT_TRUE(at::isfinite(p).all().item<bool>());
  }
}

// A reward that hangs (issue 12, case 5): it timed out on every completion and scored 0, and
// GRPO trained on those zeros without a word. Now the step stops before training, naming the
// reward and the count; nothing is written as a model.
TEST(GrpoRewardTimeouts, AHangingRewardStopsTheStageBeforeTraining) {
  const fs::path dir = testing::scratch_dir("grpo_reward_timeouts");
  RunArgs args;
  args.recipe = make_fixture(
      dir, 4,
      {{"rewards",
        Json::array({{{"name", "tag_count"}}, {{"name", "process"}, {"command", "sleep 30"}, {"timeout_s", 0.05}}})}});
  args.out = (dir / "run").string();
  try {
    run_recipe(args);
    FAIL() << "the run completed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero: step 1: reward 'process' failed on 8 of 8 completions (> 10%): 8 "
                                         "timeouts, 0 errors"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "run" / "models" / "zero"));
  EXPECT_EQ(read_json_file((dir / "run" / "manifest.json").string())["stages"]["zero"]["state"], "failed");
}

// Prompts without an "answer" (issue 12, case 9): the math reward skips every completion.
// GRPO counts it (rewards/math/skipped) and warns; an eval, whose accuracy would read 0.0
// for models it never judged, stops with an error naming the reward and the data.
TEST(GrpoRewardSkips, RowsWithoutAnswerAreCountedAndEvalRefuses) {
  const fs::path dir = testing::scratch_dir("grpo_reward_skips");
  RunArgs args;
  args.recipe = make_fixture(dir, 1);
  std::vector<Json> rows;
  for (int i = 0; i < 4; ++i) rows.push_back({{"prompt", std::to_string(i) + "+1"}});
  write_jsonl_atomic((dir / "no_answer.jsonl").string(), rows);
  args.out = (dir / "run").string();
  args.sets = {"zero.data=" + (dir / "no_answer.jsonl").string()};
  ASSERT_EQ(run_recipe(args), 0);
  const std::vector<Json> metrics = read_jsonl((dir / "run" / "zero" / "metrics.jsonl").string());
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(metrics[0]["rewards/math/skipped"], 8);  // 2 prompts x 4
  EXPECT_EQ(metrics[0]["rewards/tag_count/skipped"], 0);

  Json recipe = read_json_file(args.recipe);
  recipe["stages"] = Json::array({{{"name", "held_out"},
                                   {"type", "eval"},
                                   {"models", Json::array({{{"name", "m"}, {"model", (dir / "model").string()}}})},
                                   {"data", (dir / "no_answer.jsonl").string()},
                                   {"rewards", Json::array({{{"name", "math"}}})},
                                   {"num_samples", 2},
                                   {"max_new_tokens", 4},
                                   {"device", "cpu"}}});
  std::ofstream((dir / "eval.json").string()) << recipe.dump();
  RunArgs eval;
  eval.recipe = (dir / "eval.json").string();
  eval.out = (dir / "eval_run").string();
  try {
    run_recipe(eval);
    FAIL() << "an eval that judged nothing completed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("held_out: m: reward 'math' (the checker) skipped all 8 completions"),
              std::string::npos)
        << e.what();
  }
}

// DAPO dynamic sampling. With a reward the untrained policy never earns (math: every group
// all 0) each step draws max_rounds batches, trains on nothing and leaves the weights as they
// were; with a reward that always spreads (length ramp over 1..40 characters) one round fills
// the batch.
TEST(GrpoDynamicSampling, DropsUniformGroupsAndDrawsMore) {
  const fs::path dir = testing::scratch_dir("grpo_dynamic");
  RunArgs uniform;
  uniform.recipe = make_fixture(dir / "uniform", 2,
                                {{"dynamic_sampling", true},
                                 {"dynamic_sampling_max_rounds", 3},
                                 {"beta", 0.0},
                                 {"rewards", Json::array({{{"name", "math"}}})}});
  uniform.out = (dir / "uniform" / "run").string();
  ASSERT_EQ(run_recipe(uniform), 0);
  for (const Json& row : read_jsonl((dir / "uniform" / "run" / "zero" / "metrics.jsonl").string())) {
    EXPECT_EQ(row["dynamic_sampling/rounds"], 3.0);
    EXPECT_EQ(row["trained_groups"], 0.0);
    EXPECT_EQ(row["frac_zero_std_groups"], 1.0);
  }
  const ModelWeights before = ModelWeights::open((dir / "uniform" / "model").string());
  const ModelWeights after = ModelWeights::open((dir / "uniform" / "run" / "models" / "zero").string());
  ASSERT_EQ(before.names(), after.names());
  for (const auto& name : before.names()) {
    const TensorView& a = before.at(name);
    const TensorView& b = after.at(name);
    EXPECT_TRUE(a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0)
        << name << " changed without a learning signal";
  }

  RunArgs spread;
  spread.recipe =
      make_fixture(dir / "spread", 2,
                   {{"dynamic_sampling", true},
                    {"dynamic_sampling_max_rounds", 3},
                    {"rewards", Json::array({{{"name", "length"}, {"max_length", 40}, {"cache_length", 39}}})}});
  spread.out = (dir / "spread" / "run").string();
  ASSERT_EQ(run_recipe(spread), 0);
  for (const Json& row : read_jsonl((dir / "spread" / "run" / "zero" / "metrics.jsonl").string())) {
    EXPECT_EQ(row["dynamic_sampling/rounds"], 1.0);
    EXPECT_EQ(row["trained_groups"], 2.0);
  }
}

// Runs `recipe` uninterrupted in process, and in a child `r1kit run` SIGKILLed once its step-2
// checkpoint exists then resumed: the final `weights` file, the metrics and the samples match.
void expect_kill_and_resume_exact(const fs::path& dir, const std::string& recipe, const std::string& weights) {
  // The reference: 6 uninterrupted steps in this process.
  RunArgs straight;
  straight.recipe = recipe;
  straight.out = (dir / "straight").string();
  ASSERT_EQ(run_recipe(straight), 0);

  // The same recipe in a child `r1kit run`, SIGKILLed once its step-2 checkpoint exists.
  const std::string out = (dir / "killed").string();
  const std::string binary = std::string(R1KIT_BINARY_DIR) + "/r1kit";
  std::vector<std::string> argv_s = {binary, "run", recipe, "--out", out};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  const fs::path marker = fs::path(out) / "checkpoints" / "zero" / "step-2" / "trainer_state.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it could be killed";
  ASSERT_TRUE(fs::exists(marker));
  EXPECT_EQ(read_json_file(out + "/manifest.json")["stages"]["zero"]["state"], "running");

  RunArgs resumed;
  resumed.recipe = recipe;
  resumed.out = out;
  resumed.resume = true;
  ASSERT_EQ(run_recipe(resumed), 0);
  ASSERT_TRUE(fs::exists(dir / "straight" / "models" / "zero" / weights)) << weights;
  EXPECT_EQ(slurp(dir / "straight" / "models" / "zero" / weights), slurp(fs::path(out) / "models" / "zero" / weights))
      << "final weights differ after kill + resume";
  EXPECT_EQ(metric_rows(dir / "straight"), metric_rows(out));
  // Samples of the steps replayed after the checkpoint are not written twice.
  EXPECT_EQ(read_jsonl((dir / "straight" / "zero" / "samples.jsonl").string()),
            read_jsonl(out + "/zero/samples.jsonl"));
}

TEST(GrpoResume, KilledRunResumesExactly) {
  const fs::path dir = testing::scratch_dir("grpo_resume");
  expect_kill_and_resume_exact(dir, make_fixture(dir, 6), "model.safetensors");
}

// bf16 compute over fp32 masters with activation checkpointing: the checkpoints hold the
// masters, so kill + resume still ends bitwise where an uninterrupted run does.
TEST(GrpoResume, KilledBf16CheckpointingRunResumesExactly) {
  const fs::path dir = testing::scratch_dir("grpo_resume_bf16");
  expect_kill_and_resume_exact(
      dir, make_fixture(dir, 6, {{"bf16", true}, {"gradient_checkpointing", true}, {"learning_rate", 1e-3}}),
      "model.safetensors");
}

// LoRA: the checkpoints hold the adapters and their AdamW state; the KL reference is the base
// with the adapters off. Kill + resume ends with the same adapter, bitwise.
TEST(GrpoResume, KilledLoraRunResumesExactly) {
  const fs::path dir = testing::scratch_dir("grpo_resume_lora");
  expect_kill_and_resume_exact(dir, make_fixture(dir, 6, {{"lora_r", 4}, {"lora_alpha", 8}, {"learning_rate", 1e-2}}),
                               "adapter_model.safetensors");
  EXPECT_FALSE(fs::exists(dir / "straight" / "models" / "zero" / "model.safetensors"));  // the adapter only
  // `r1kit merge`: a plain model computing what base + adapter computes.
  const std::string adapter = (dir / "straight" / "models" / "zero").string(), merged = (dir / "merged").string();
  const auto o =
      testing::run_r1kit("merge --adapter '" + adapter + "' --out '" + merged + "'", (dir / "merge.err").string());
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_TRUE(fs::exists(fs::path(merged) / "model.safetensors"));
  EXPECT_TRUE(fs::exists(fs::path(merged) / "tokenizer_config.json"));
  {
    at::NoGradGuard no_grad;
    const at::Tensor tokens = at::arange(2, 12, at::kLong).unsqueeze(0);  // [1, 10]
    auto with_adapter = policy::load_pretrained(adapter, resolve_device("cpu"));
    auto plain = policy::load_pretrained(merged, resolve_device("cpu"));
    EXPECT_LT((with_adapter->forward(tokens) - plain->forward(tokens)).abs().max().item<double>(), 1e-5);
  }

  // A stage can start from the adapter directory: with the same rank it trains those adapters
  // further (its output is an adapter again), with lora_r 0 it merges them and trains every
  // weight (its output is a plain model).
  for (const int64_t r : {4, 0}) {
    Json recipe = read_json_file((dir / "recipe.json").string());
    Json& stage = recipe["stages"][0];
    stage["model"] = adapter;
    stage["lora_r"] = r;
    stage["max_steps"] = 2;
    const std::string path = (dir / ("from_adapter_" + std::to_string(r) + ".json")).string();
    std::ofstream(path) << recipe.dump();
    RunArgs args;
    args.recipe = path;
    args.out = (dir / ("from_adapter_" + std::to_string(r))).string();
    ASSERT_EQ(run_recipe(args), 0);
    const fs::path out_model = fs::path(args.out) / "models" / "zero";
    EXPECT_EQ(fs::exists(out_model / "adapter_model.safetensors"), r > 0) << "lora_r " << r;
    EXPECT_EQ(fs::exists(out_model / "model.safetensors"), r == 0) << "lora_r " << r;
  }
}

// Issue 12, case 6: the newest checkpoint's optimizer.pt was cut short after it was written
// (a full disk, a crash outside r1kit). --resume skips it for the previous checkpoint, with a
// warning, and the run still ends bitwise where an uninterrupted one does.
TEST(GrpoResume, TruncatedNewestCheckpointResumesFromThePrevious) {
  const fs::path dir = testing::scratch_dir("grpo_resume_truncated");
  const std::string recipe = make_fixture(dir, 6);
  RunArgs straight;
  straight.recipe = recipe;
  straight.out = (dir / "straight").string();
  ASSERT_EQ(run_recipe(straight), 0);

  // 4 of the 6 steps (checkpoints step-2 and step-4), as if killed right after step 4.
  const std::string out = (dir / "damaged").string();
  RunArgs first;
  first.recipe = recipe;
  first.out = out;
  first.sets = {"zero.max_steps=4"};
  ASSERT_EQ(run_recipe(first), 0);
  Json manifest = read_json_file(out + "/manifest.json");
  manifest["stages"]["zero"]["state"] = "running";
  std::ofstream(out + "/manifest.json") << manifest.dump(2);
  const std::string optimizer = out + "/checkpoints/zero/step-4/optimizer.pt";
  fs::resize_file(optimizer, fs::file_size(optimizer) / 2);
  fs::create_directories(out + "/checkpoints/zero/step-6.tmp");  // a save that never finished

  RunArgs resumed;
  resumed.recipe = recipe;
  resumed.out = out;
  resumed.resume = true;
  ASSERT_EQ(run_recipe(resumed), 0);
  EXPECT_FALSE(fs::exists(out + "/checkpoints/zero/step-6.tmp")) << "stale .tmp not cleaned";
  EXPECT_EQ(slurp(dir / "straight" / "models" / "zero" / "model.safetensors"),
            slurp(fs::path(out) / "models" / "zero" / "model.safetensors"))
      << "final weights differ after resuming past a truncated checkpoint";
  EXPECT_EQ(metric_rows(dir / "straight"), metric_rows(out));
}

// Issue 12, case 3: a reward plug-in that segfaults in step 3 of a run. It runs isolated (the
// default), so the stage fails with an error naming the plug-in and the signal, the manifest
// says "failed", checkpoint step-2 is intact, and --resume (a new plug-in host, whose crash is
// again 16 calls away) ends bitwise where an uninterrupted run does.
TEST(GrpoPluginCrash, StopsCleanlyAndResumesBitwise) {
  const fs::path dir = testing::scratch_dir("grpo_plugin_crash");
  const std::string plugin = std::string(R1KIT_BINARY_DIR) + "/tests/rewards/libmisbehaving_reward_plugin.so";
  auto rewards = [&](const Json& options) {
    return Json::array({{{"name", "tag_count"}}, {{"name", "plugin"}, {"path", plugin}, {"options", options}}});
  };
  // 2 prompts x 4 completions a step: calls 17.. are step 3.
  const std::string recipe = make_fixture(dir, 4, {{"rewards", rewards({{"mode", "segv"}, {"after", 16}})}});
  RunArgs straight;
  straight.recipe = recipe;
  straight.out = (dir / "straight").string();
  straight.sets = {"zero.rewards=" + rewards({{"mode", "none"}}).dump()};
  ASSERT_EQ(run_recipe(straight), 0);

  const std::string out = (dir / "crashed").string();
  RunArgs crashing;
  crashing.recipe = recipe;
  crashing.out = out;
  try {
    run_recipe(crashing);
    FAIL() << "the run completed";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("reward plugin " + plugin + ": crashed with SIGSEGV"), std::string::npos) << m;
    EXPECT_NE(m.find("on row "), std::string::npos) << m;
  }
  EXPECT_EQ(read_json_file(out + "/manifest.json")["stages"]["zero"]["state"], "failed");
  EXPECT_TRUE(fs::exists(out + "/checkpoints/zero/step-2/model.safetensors"));
  EXPECT_FALSE(fs::exists(out + "/models/zero"));

  RunArgs resumed = crashing;
  resumed.resume = true;
  ASSERT_EQ(run_recipe(resumed), 0);
  EXPECT_EQ(slurp(dir / "straight" / "models" / "zero" / "model.safetensors"),
            slurp(fs::path(out) / "models" / "zero" / "model.safetensors"))
      << "final weights differ after resuming past a plug-in crash";
  EXPECT_EQ(metric_rows(dir / "straight"), metric_rows(out));
}

}  // namespace
}  // namespace r1kit::pipelines
