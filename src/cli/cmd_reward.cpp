// `r1kit reward --reward NAME [--data F] [--out F] [--threads N]`: score JSONL rows offline
// (rewards::run_reward_command does the work; see rewards/reward_command.h).
#include "rewards/reward_command.h"
#include "src/cli/commands.h"

namespace r1kit::cli {

void add_reward_command(CLI::App& app) {
  auto args = std::make_shared<rewards::RewardCommandArgs>();
  CLI::App* cmd = app.add_subcommand("reward", "score completions offline (JSONL in, JSONL out)");
  cmd->add_option("--reward,-r", args->reward,
                  "reward spec: a name (math), name:weight list (math:1,format:0.5), a JSON list or a .json file")
      ->capture_default_str();
  cmd->add_option("--data,-d", args->data, "input JSONL (default: stdin)");
  cmd->add_option("--out,-o", args->out, "output JSONL (default: stdout)");
  cmd->add_option("--threads,-j", args->threads, "scoring threads (0 = all cores)");
  cmd->callback([args] { exit_code() = rewards::run_reward_command(*args); });
}

}  // namespace r1kit::cli
