// `r1kit bench reward|...  [--json]`: side-by-side benchmarks against the tool a user would
// pick instead (bench/). Each prints JSON whose last line holds the ratio.
#include "bench/bench_reward.h"
#include "bench/bench_train.h"
#include "src/cli/commands.h"

namespace r1kit::cli {

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks against peers (JSON output)");
  bench->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  CLI::App* reward = bench->add_subcommand("reward", "math checks/s vs Math-Verify; sandboxed code executions/s");
  reward->add_flag("--json", *json, "print only the JSON line");
  reward->callback([json] { exit_code() = bench::bench_reward(*json); });
  bench::add_bench_train_command(*bench);  // `bench train` (bench/bench_train.cpp)
}

}  // namespace r1kit::cli
