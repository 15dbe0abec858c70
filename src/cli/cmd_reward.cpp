// `r1kit reward --reward NAME [--data F] [--out F] [--threads N]`: score JSONL rows offline
// (reward_command.h: the flags and the work, shared with the r1kit-reward tool).
#include "src/cli/commands.h"
#include "src/cli/reward_command.h"

namespace r1kit::cli {

void add_reward_command(CLI::App& app) {
  auto args = std::make_shared<RewardCommandArgs>();
  CLI::App* cmd = add_reward_subcommand(app, *args);
  cmd->callback([args] { exit_code() = run_reward_command(*args); });
}

}  // namespace r1kit::cli
