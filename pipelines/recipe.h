// The recipe runner: a recipe is JSON {"stages": [{"name": ..., "type": ..., options}, ...]}
// run in order into one run directory. The resolved recipe (after --set overrides) is saved
// as RUN/recipe.json; RUN/manifest.json records each stage's state ("running", "done") and
// outputs, so --resume skips finished stages and resumes the interrupted one from its newest
// checkpoint. A stage names an earlier stage's output instead of a path with
// {"from": "<stage>"} (its model directory; its dataset under "data"). The WHOLE recipe is
// parsed and checked before the first stage runs (stage types from the registry, stage.h):
// every option's type, range and enum, every reward, every {"from"} reference (an earlier
// stage that writes that output) and every input path; the first problem is one line naming
// the recipe file, the stage and the key.
#pragma once
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::pipelines {

struct RunArgs {
  std::string recipe;               // recipe JSON file
  std::string out = "runs/latest";  // run directory
  bool resume = false;
  bool check_only = false;        // validate the whole recipe, run nothing
  std::vector<std::string> sets;  // "stage.key=value" (value parsed as JSON, else a string)
};

// Applies --set overrides to a recipe; errors name the override.
Json apply_overrides(Json recipe, const std::vector<std::string>& sets);
// Parses and checks every stage of the recipe (after --set); throws r1kit::Error on the first
// problem. Writes nothing.
void validate_recipe(const RunArgs& args);
int run_recipe(const RunArgs& args);

}  // namespace r1kit::pipelines
