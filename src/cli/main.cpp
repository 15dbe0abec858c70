// r1kit: the command line. Errors from bad input (r1kit::Error) are printed as one line on
// stderr with a non-zero exit; anything else is a bug and says so.
#include <csignal>
#include <cstdio>
#include <exception>

#include "src/cli/commands.h"
#include "src/cpu_memory.h"
#include "src/error.h"

namespace r1kit::cli {
int& exit_code() {
  static int code = 0;
  return code;
}
}  // namespace r1kit::cli

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f, a quota) then fails the write with EFBIG, which the writer
  // reports naming the file, instead of killing the process with SIGXFSZ mid-checkpoint.
  std::signal(SIGXFSZ, SIG_IGN);
  // Live CPU tensor bytes are counted (memory/peak_bytes, `r1kit plan`'s yardstick).
  r1kit::cpu_memory::install();
  CLI::App app{"r1kit: RL-first post-training (GRPO, R1 recipes) in C++/LibTorch"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "r1kit 0.1");
  r1kit::cli::add_demo_command(app);
  r1kit::cli::add_run_command(app);
  r1kit::cli::add_launch_command(app);
  r1kit::cli::add_report_command(app);
  r1kit::cli::add_reward_command(app);
  r1kit::cli::add_bench_command(app);
  r1kit::cli::add_generate_command(app);
  r1kit::cli::add_tokenize_command(app);
  r1kit::cli::add_merge_command(app);
  r1kit::cli::add_plan_command(app);
  r1kit::cli::add_quantize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const r1kit::Error& e) {
    std::fprintf(stderr, "r1kit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "r1kit: internal error: %s\n", e.what());
    return 2;
  }
  return r1kit::cli::exit_code();
}
