// r1kit-reward: the torch-free stand-in for `r1kit reward` and `r1kit bench reward`, so
// rewards/ can be used and tested end to end without LibTorch. Flags match the CLI's.
#include <CLI/CLI.hpp>

#include "bench/bench_reward.h"
#include "rewards/reward_command.h"

int main(int argc, char** argv) {
  CLI::App app{"r1kit-reward: score completions with r1kit's rule-based rewards"};
  app.require_subcommand(1);
  r1kit::rewards::RewardCommandArgs args;
  auto* reward = app.add_subcommand("reward", "score a JSONL file (completion + task fields)");
  reward->add_option("--reward", args.reward, "reward spec: NAME, NAME:W,NAME:W, a JSON list or a .json file");
  reward->add_option("--data", args.data, "input JSONL (default stdin)");
  reward->add_option("--out", args.out, "output JSONL (default stdout)");
  reward->add_option("--threads", args.threads, "worker threads (0 = all cores)");
  bool json = false;
  auto* bench = app.add_subcommand("bench", "math checks/s vs Math-Verify, code executions/s");
  bench->add_flag("--json", json, "print only the JSON line");
  CLI11_PARSE(app, argc, argv);
  if (reward->parsed()) return r1kit::rewards::run_reward_command(args);
  return r1kit::bench::bench_reward(json);
}
