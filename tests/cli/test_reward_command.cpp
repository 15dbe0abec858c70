// `r1kit reward` end to end through run_reward_command: rows come back with reward, why
// and reward_parts; a bad spec is a one-line error and the output file is not touched.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "src/cli/reward_command.h"
#include "src/jsonl.h"

using namespace r1kit;
using namespace r1kit::cli;
namespace fs = std::filesystem;

TEST(RewardCommand, ScoresJsonlRows) {
  fs::path dir = fs::temp_directory_path() / ("r1kit-reward-cmd-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string in = (dir / "in.jsonl").string(), out = (dir / "out.jsonl").string();
  write_jsonl_atomic(in,
                     {
                         {{"prompt", "1+1?"}, {"completion", "<think>so</think><answer>2</answer>"}, {"answer", "2"}},
                         {{"completion", "The answer is 3"}, {"answer", "#### 4"}},
                         {{"completion", {{{"role", "assistant"}, {"content", "\\boxed{4}"}}}}, {"answer", "4"}},
                     });
  RewardCommandArgs args;
  args.reward = "math,format:0.5";
  args.data = in;
  args.out = out;
  args.threads = 2;
  ASSERT_EQ(run_reward_command(args), 0);
  auto rows = read_jsonl(out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["reward"], 1.5);     // right + template
  EXPECT_EQ(rows[1]["reward"], 0.0);     // 3 != 4, no template
  EXPECT_EQ(rows[2]["reward"], 1.0);     // chat-list completion, right
  EXPECT_EQ(rows[0]["prompt"], "1+1?");  // the row itself is kept
  EXPECT_TRUE(rows[1]["why"].get<std::string>().find("math=0") != std::string::npos);

  // A bad spec: non-zero, and the previous output survives.
  args.reward = "math:x";
  EXPECT_EQ(run_reward_command(args), 1);
  EXPECT_EQ(read_jsonl(out).size(), 3u);
  fs::remove_all(dir);
}

// A reward that never answers (issue 12, case 5: it scored 0 on every row, exit 0, no word):
// the rows are still written, a line on stderr names the reward and the count, and the exit
// is non-zero past --max-failure-fraction; with the threshold at 1 the same run exits 0.
TEST(RewardCommand, TimeoutsAreReportedAndFailPastTheThreshold) {
  fs::path dir = fs::temp_directory_path() / ("r1kit-reward-timeout-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string in = (dir / "in.jsonl").string(), out = (dir / "out.jsonl").string();
  write_jsonl_atomic(in, {{{"completion", "a"}}, {{"completion", "b"}}});
  RewardCommandArgs args;
  args.reward = R"([{"name": "process", "command": "sleep 30", "timeout_s": 0.05}])";
  args.data = in;
  args.out = out;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_reward_command(args), 1);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("reward 'process' failed on 2 of 2 rows (2 timeouts, 0 errors; scored 0)"), std::string::npos)
      << err;
  EXPECT_NE(err.find("reward 'process' failed on 2 of 2 completions (> 10%): 2 timeouts, 0 errors"), std::string::npos)
      << err;
  EXPECT_EQ(read_jsonl(out).size(), 2u);
  args.max_failure_fraction = 1.0;
  EXPECT_EQ(run_reward_command(args), 0);
  fs::remove_all(dir);
}
