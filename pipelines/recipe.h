// The recipe runner: a recipe is JSON {"stages": [{"name": ..., "type": ..., options}, ...]}
// run in order into one run directory. The resolved recipe (after --set overrides) is saved
// as RUN/recipe.json; RUN/manifest.json records each stage's state ("running", "done") and
// outputs, so --resume skips finished stages and resumes the interrupted one from its newest
// checkpoint. A stage names an earlier stage's output instead of a path with
// {"from": "<stage>"} (its model directory). Unknown stage types and option keys are errors
// naming the recipe file, the stage and the key.
#pragma once
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::pipelines {

struct RunArgs {
  std::string recipe;               // recipe JSON file
  std::string out = "runs/latest";  // run directory
  bool resume = false;
  std::vector<std::string> sets;    // "stage.key=value" (value parsed as JSON, else a string)
};

// Applies --set overrides to a recipe; errors name the override.
Json apply_overrides(Json recipe, const std::vector<std::string>& sets);
int run_recipe(const RunArgs& args);

}  // namespace r1kit::pipelines
