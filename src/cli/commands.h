// The `r1kit` subcommands. Each lives in its own cmd_<name>.cpp, parses its flags with CLI11
// into the plain args struct of the library function it calls, and registers itself in
// main.cpp's table with one add_<name>_command line.
#pragma once
#include <CLI/CLI.hpp>

namespace r1kit::cli {

void add_demo_command(CLI::App& app);
void add_reward_command(CLI::App& app);
void add_bench_command(CLI::App& app);  // bench reward, rollout, train
void add_run_command(CLI::App& app);
void add_launch_command(CLI::App& app);  // N ranks of an r1kit command (cmd_launch.cpp)
void add_report_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);  // render + tokenize a dataset (chat templates)
void add_merge_command(CLI::App& app);     // a LoRA adapter merged into its base
void add_plan_command(CLI::App& app);      // per-rank memory of a recipe's training stages
void add_quantize_command(CLI::App& app);  // a model in DeepSeek-V3's FP8 layout

// Set by a subcommand's callback; main returns it.
int& exit_code();

}  // namespace r1kit::cli
