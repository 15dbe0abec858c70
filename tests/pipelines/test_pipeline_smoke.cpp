// The R1 pipeline end to end, small: `r1kit demo` (examples/recipes/r1_tiny.json) with
// --set overrides that shrink every stage, run as a child process, SIGKILLed inside the
// GRPO stage once its step-2 checkpoint exists, then resumed with --resume. Checks that the
// stages chain (models and the rejection-sampled data flow by {"from"}), that the resumed run
// skips the finished stages (their model files untouched) and continues the interrupted one
// (each GRPO step logged once), and summary.json's fields for every model stage.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "src/config.h"
#include "src/jsonl.h"
#include "tests/test_util.h"

extern char** environ;

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::slurp;

const std::vector<std::string> kSmallerStages = {
    "base.max_steps=30", "student_base.max_steps=30", "eval_base.num_samples=2", "zero.max_steps=8",
    "zero.save_steps=2", "zero.prompts_per_step=4", "zero.num_generations=4", "traces.max_prompts=8",
    "traces.num_samples=2",
    // An undertrained base is rarely right: keep every finished-or-not sample so the
    // distillation stage has data whatever the rewards say (the filters are tested elsewhere).
    "traces.min_rewards={\"format\": 0}", "traces.drop_truncated=false", "student_distill.max_steps=4",
    "student_rl.max_steps=2", "student_rl.prompts_per_step=4", "eval_final.num_samples=2"};

// Starts `r1kit demo --out OUT [--resume] --set ...` with its output in LOG; returns the pid.
pid_t start_demo(const std::string& out, bool resume, const std::string& log) {
  const std::string binary = std::string(R1KIT_BINARY_DIR) + "/r1kit";
  std::vector<std::string> argv_s = {binary, "demo", "--out", out};
  if (resume) argv_s.push_back("--resume");
  for (const auto& s : kSmallerStages) {
    argv_s.push_back("--set");
    argv_s.push_back(s);
  }
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // The recipe's data paths are relative to the checkout.
  posix_spawn_file_actions_addchdir_np(&actions, R1KIT_SOURCE_DIR);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << binary;
  return pid;
}

TEST(PipelineSmoke, StagesChainResumeSkipsFinishedStagesAndSummaryHasEveryField) {
  const fs::path dir = testing::scratch_dir("pipeline_smoke");
  const std::string out = (dir / "run").string();

  // 1. Start, and SIGKILL inside the GRPO stage once its step-2 checkpoint is complete.
  const pid_t pid = start_demo(out, /*resume=*/false, (dir / "first.log").string());
  const fs::path marker = fs::path(out) / "checkpoints" / "zero" / "step-2" / "trainer_state.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed:\n" << slurp(dir / "first.log");
  ASSERT_TRUE(fs::exists(marker)) << slurp(dir / "first.log");
  const Json killed = read_json_file(out + "/manifest.json");
  for (const char* done : {"base", "student_base", "eval_base"}) EXPECT_EQ(killed["stages"][done]["state"], "done");
  EXPECT_EQ(killed["stages"]["zero"]["state"], "running");
  const auto base_written = fs::last_write_time(fs::path(out) / "models" / "base" / "model.safetensors");

  // 2. Resume: finished stages skipped, the GRPO stage continues from step 2, the rest run.
  const pid_t again = start_demo(out, /*resume=*/true, (dir / "resumed.log").string());
  ::waitpid(again, &status, 0);
  const std::string log = slurp(dir / "resumed.log");
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  EXPECT_NE(log.find("stage base (sft): done in an earlier run, skipped"), std::string::npos) << log;
  EXPECT_NE(log.find("zero: resumed from"), std::string::npos) << log;
  EXPECT_EQ(fs::last_write_time(fs::path(out) / "models" / "base" / "model.safetensors"), base_written);
  std::vector<int64_t> steps;
  for (const Json& row : read_jsonl(out + "/zero/metrics.jsonl")) steps.push_back(row["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  // 3. The chain: the traces came from the RL model and fed the student.
  const Json manifest = read_json_file(out + "/manifest.json");
  for (const auto& [name, entry] : manifest["stages"].items()) EXPECT_EQ(entry["state"], "done") << name;
  const std::vector<Json> traces = read_jsonl(manifest["stages"]["traces"]["data_path"].get<std::string>());
  ASSERT_FALSE(traces.empty());
  EXPECT_EQ(traces[0]["source_model"], manifest["stages"]["zero"]["model_dir"]);
  for (const char* key : {"prompt", "completion", "rewards", "prompt_index", "sample_index", "source"}) {
    EXPECT_TRUE(traces[0].contains(key)) << key;
  }
  const Json recipe = read_json_file(out + "/recipe.json");
  EXPECT_EQ(recipe["stages"][5]["name"], "student_distill");

  // 4. summary.json: every model stage with its type, sizes, time and held-out evaluation.
  const Json summary = read_json_file(out + "/summary.json");
  const std::map<std::string, std::string> types = {{"base", "sft"},
                                                    {"student_base", "sft"},
                                                    {"zero", "grpo"},
                                                    {"student_distill", "distill"},
                                                    {"student_rl", "grpo"}};
  for (const auto& [name, type] : types) {
    ASSERT_TRUE(summary["stages"].contains(name)) << name;
    const Json& s = summary["stages"][name];
    EXPECT_EQ(s["type"], type) << name;
    EXPECT_GT(s["params"].get<int64_t>(), 0) << name;
    EXPECT_GT(s["active_params"].get<int64_t>(), 0) << name;
    EXPECT_GE(s["params"].get<int64_t>(), s["active_params"].get<int64_t>()) << name;
    EXPECT_GT(s["seconds"].get<double>(), 0) << name;
    const double accuracy = s["eval"]["accuracy"].get<double>();
    EXPECT_TRUE(accuracy >= 0 && accuracy <= 1) << name;
    EXPECT_GT(s["eval"]["mean_completion_tokens"].get<double>(), 0) << name;
    EXPECT_EQ(s["eval"]["n"], 100) << name;
    // The demo's difficulty buckets and reflection share reach summary.json (completion_stats.h).
    const double reflecting = s["eval"]["reflection_share"].get<double>();
    EXPECT_TRUE(reflecting >= 0 && reflecting <= 1) << name;
    ASSERT_EQ(s["eval"]["by_difficulty"].size(), 5u) << name;
    int64_t completions = 0;
    for (const Json& b : s["eval"]["by_difficulty"]) completions += b["completions"].get<int64_t>();
    EXPECT_EQ(completions, 100 * 2) << name;  // eval_final.num_samples=2
  }
  // And every GRPO step logged them.
  for (const Json& row : read_jsonl(out + "/zero/metrics.jsonl")) {
    EXPECT_TRUE(row.contains("completion/reflection_share")) << row.dump();
    bool some_bucket = false;
    for (const auto& [key, value] : row.items()) some_bucket |= key.starts_with("completion/mean_length/difficulty=");
    EXPECT_TRUE(some_bucket) << row.dump();
  }
  // The MoE teacher has fewer active than total parameters; the dense student does not.
  EXPECT_LT(summary["stages"]["base"]["active_params"].get<int64_t>(),
            summary["stages"]["base"]["params"].get<int64_t>());
  EXPECT_EQ(summary["stages"]["student_base"]["active_params"], summary["stages"]["student_base"]["params"]);
  EXPECT_EQ(summary["stages"]["traces"]["type"], "rejection_sample");
  const std::string html = slurp(fs::path(out) / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(log.find("student_distill"), std::string::npos) << "the eval table is printed at the end";
  EXPECT_NE(log.find("by bucket"), std::string::npos) << "and the per-difficulty one";
  EXPECT_NE(html.find("completion length by difficulty"), std::string::npos);
}

}  // namespace
}  // namespace r1kit
