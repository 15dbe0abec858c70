// libFuzzer target (LibTorch builds only): a recipe JSON as `r1kit run --check` validates
// it — every stage type's options, rewards, {"from"} references and --set overrides.
// Writes nothing; paths the recipe names are looked up but never created.
#include "pipelines/recipe.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  r1kit::fuzz::InputFile file(data, size);
  r1kit::fuzz::expect_clean([&] {
    r1kit::pipelines::RunArgs args;
    args.recipe = file.path();
    args.out = "/nonexistent/r1kit-fuzz-run";
    args.check_only = true;
    r1kit::pipelines::validate_recipe(args);
  });
  return 0;
}
