// `r1kit report RUN_DIR`: (re)writes RUN_DIR/report.html and prints the eval table
// (pipelines/report.h). Reads only the run's files: no model is loaded.
#include <cstdio>
#include <memory>
#include <string>

#include "pipelines/report.h"
#include "src/cli/commands.h"

namespace r1kit::cli {

void add_report_command(CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("report", "write RUN_DIR/report.html and print the eval table");
  cmd->add_option("run_dir", *run_dir, "run directory (r1kit run --out)")->required();
  cmd->callback([run_dir] {
    pipelines::write_report(*run_dir);
    std::fputs(pipelines::format_run_eval_table(*run_dir).c_str(), stdout);
    std::printf("wrote %s/report.html\n", run_dir->c_str());
  });
}

}  // namespace r1kit::cli
