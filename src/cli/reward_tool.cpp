// r1kit-reward: the torch-free stand-in for `r1kit reward` and `r1kit bench reward`, so
// rewards/ can be used and tested end to end without LibTorch. The `reward` subcommand is the
// CLI's own (add_reward_subcommand); `bench` is `r1kit bench reward`.
#include <CLI/CLI.hpp>

#include "bench/bench_reward.h"
#include "src/cli/reward_command.h"

int main(int argc, char** argv) {
  CLI::App app{"r1kit-reward: score completions with r1kit's rule-based rewards"};
  app.require_subcommand(1);
  r1kit::cli::RewardCommandArgs args;
  CLI::App* reward = r1kit::cli::add_reward_subcommand(app, args);
  bool json = false;
  auto* bench = app.add_subcommand("bench", "math checks/s vs Math-Verify, code executions/s");
  bench->add_flag("--json", json, "print only the JSON line");
  CLI11_PARSE(app, argc, argv);
  if (reward->parsed()) return r1kit::cli::run_reward_command(args);
  return r1kit::bench::bench_reward(json);
}
