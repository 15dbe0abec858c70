// `r1kit demo [--out DIR] [--resume] [--set stage.key=value ...]`: the DeepSeek-R1 pipeline
// in miniature, examples/recipes/r1_tiny.json, on 2 CPU cores in minutes: pretrain a tiny
// MoE base and a dense student base, evaluate them, R1-Zero (GRPO), rejection sampling,
// distillation into the student, a student-GRPO baseline with the same sample budget, and
// the final evaluation. Writes RUN/summary.json and RUN/report.html and prints the eval
// table. It is `r1kit run` on that recipe, so it runs from the r1kit checkout (the recipe's
// data paths are relative to it).
#include <ATen/Parallel.h>

#include <filesystem>

#include "pipelines/recipe.h"
#include "src/cli/commands.h"
#include "src/distributed.h"
#include "src/error.h"

namespace r1kit::cli {

void add_demo_command(CLI::App& app) {
  auto args = std::make_shared<pipelines::RunArgs>();
  args->recipe = "examples/recipes/r1_tiny.json";
  args->out = "runs/demo";
  CLI::App* cmd = app.add_subcommand("demo", "the R1 pipeline in miniature (examples/recipes/r1_tiny.json)");
  cmd->add_option("--out,-o", args->out, "run directory")->capture_default_str();
  cmd->add_option("--recipe", args->recipe, "the recipe to run")->capture_default_str();
  cmd->add_flag("--resume", args->resume, "skip finished stages, resume the interrupted one");
  cmd->add_option("--set", args->sets, "override: stage.key=value (repeatable)");
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--threads", *threads, "CPU threads for LibTorch (0 = its default; 1 on a busy machine)");
  cmd->callback([args, threads] {
    if (*threads > 0) at::set_num_threads(*threads);
    if (!std::filesystem::exists(args->recipe)) {
      throw Error(args->recipe + ": not found; run `r1kit demo` from the r1kit checkout (or pass --recipe)");
    }
    set_distributed(DistributedContext::init_from_env());
    exit_code() = pipelines::run_recipe(*args);
    distributed().barrier("end of run");
    distributed().shutdown();
  });
}

}  // namespace r1kit::cli
