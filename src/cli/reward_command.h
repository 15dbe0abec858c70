// `r1kit reward`: score a JSONL file offline. Both executables, `r1kit` (cmd_reward.cpp) and
// the torch-free `r1kit-reward` (reward_tool.cpp), add the subcommand with
// add_reward_subcommand and call run_reward_command, so their flags cannot drift. Torch-free
// (library r1kit_cli_reward).
//
// Each input row needs "completion" (a string, or a chat list whose last message's
// "content" is used) plus the task fields the rewards read ("answer" for math, "tests"
// or HumanEval's prompt/test/entry_point for code); "prompt" is optional. Each row is
// written back unchanged with "reward" (number, or null when skipped), "why" and
// "reward_parts" added. Output is written atomically; errors are one line on stderr and
// a non-zero return, with nothing already written destroyed.
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace r1kit::cli {

struct RewardCommandArgs {
  std::string reward = "math";        // "math", "math:1,format:0.5", a JSON list, or a .json file
  std::string data;                   // input JSONL ("" or "-": stdin)
  std::string out;                    // output JSONL ("" or "-": stdout)
  int threads = 0;                    // 0: hardware threads
  double max_failure_fraction = 0.1;  // a reward failing (timeout, error) on more rows than this: exit 1
};

// Returns the process exit code (0 ok, 1 bad input or too many reward failures; the scored
// rows are written either way).
int run_reward_command(const RewardCommandArgs& args);

// Adds the `reward` subcommand and its flags (bound to `args`) under `app`; the caller sets
// the callback. `args` must outlive parsing.
CLI::App* add_reward_subcommand(CLI::App& app, RewardCommandArgs& args);

}  // namespace r1kit::cli
