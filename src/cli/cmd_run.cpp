// `r1kit run RECIPE.json [--out DIR] [--resume] [--set stage.key=value ...]`: runs a recipe
// (pipelines/recipe.h).
#include "pipelines/recipe.h"
#include "pipelines/stage.h"
#include "src/cli/commands.h"
#include "src/distributed.h"

namespace r1kit::cli {

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<pipelines::RunArgs>();
  std::string stages = "\nStage types (the recipe's \"type\"):";
  for (const pipelines::StageType* t : pipelines::stage_types()) stages += "\n  " + t->name + ": " + t->help;
  CLI::App* cmd = app.add_subcommand("run", "run a recipe (stage types: " + pipelines::stage_type_names() + ")");
  cmd->footer(stages);
  cmd->add_option("recipe", args->recipe, "recipe JSON")->required();
  cmd->add_option("--out,-o", args->out, "run directory")->capture_default_str();
  cmd->add_flag("--resume", args->resume, "skip finished stages, resume the interrupted one");
  cmd->add_option("--set", args->sets, "override: stage.key=value (repeatable)");
  cmd->add_flag("--check", args->check_only,
                "validate the whole recipe (options, rewards, references, paths); run nothing");
  cmd->callback([args] {
    // Under `r1kit launch`, torchrun, srun or mpirun this process is one rank of a
    // data-parallel group (src/distributed.h); otherwise the group is just this process.
    set_distributed(DistributedContext::init_from_env());
    exit_code() = pipelines::run_recipe(*args);
    distributed().barrier("end of run");  // rank 0 hosts the store: nobody leaves before all are done
    distributed().shutdown();
  });
}

}  // namespace r1kit::cli
