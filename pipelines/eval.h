// The `eval` stage: every listed model answers the same held-out prompts; reports pass@1
// (the mean correctness over n samples per prompt, DeepSeek-R1's "pass@1 with k samples"),
// maj@k (the most frequent extracted answer among k samples is correct; consensus in the
// R1 tables) and the mean completion length (per difficulty bucket, and the share of
// completions that reflect, with the keys of completion_stats.h). Greedy when temperature is 0 (n is then 1).
// Correct = the first reward of `rewards` is full (the task's checker), as in GRPO.
// Outputs: RUN/<stage>/eval.json ({"models": {NAME: {...}}}) and eval_samples.jsonl.
// Not here: pass@k for k > 1 (the unbiased estimator); answers grouped by their normal form
// are compared by the extracted text's parsed form, not by a full symbolic equivalence.
#pragma once
#include <string>
#include <vector>

#include "pipelines/completion_stats.h"
#include "pipelines/options.h"
#include "pipelines/stage.h"

namespace r1kit::pipelines {

struct EvalModel {
  std::string name;  // the row in the tables; a recipe stage name when given as a string
  std::string dir;   // HF model directory (with tokenizer.json)
};

struct EvalOptions {
  std::vector<EvalModel> models;
  PromptOptions prompts;         // held-out prompts; the template usually the training one
  RewardSpec rewards;            // the first is the task's checker (correctness)
  CompletionStatsOptions stats;  // difficulty_field, reflection_patterns
  // DeepSeek-R1's evaluation setting: T 0.6, top-p 0.95; temperature 0 = greedy.
  GenerationOptions generation{.sampling = {.temperature = 0.6, .top_p = 0.95, .max_new_tokens = 256}};
  int64_t num_samples = 4;  // n samples per prompt (pass@1 is their mean)
  int64_t maj_k = 0;        // k of maj@k; 0 = num_samples (when > 1)
  int64_t max_prompts = 0;  // 0 = every row
  int64_t log_samples = 3;  // per model, to eval_samples.jsonl
  uint64_t seed = 1234;
  std::string device = "auto";
};

// maj@k for one prompt: the answers extracted from its first k completions vote (in their
// parsed normal form, so "1/2" and "\frac{1}{2}" vote together; completions without an answer
// abstain); the verdict is whether the winning answer was judged correct. Ties go to the answer
// that reached the winning count first. No votes at all: false.
bool majority_vote_correct(const std::vector<std::string>& completions, const std::vector<bool>& correct, int64_t k);

// `models` in JSON: a list of {"name", "model"} objects (the recipe runner turns stage names
// into these before parsing).
EvalOptions parse_eval_options(const Json& j, const StageSetting& setting);
std::vector<StageInput> eval_inputs(const EvalOptions& o);
StageResult run_eval(const EvalOptions& options, const StageContext& context);

}  // namespace r1kit::pipelines
