// The GRPO stage: run_grpo reads top to bottom like the algorithm (DeepSeekMath Alg. 1):
// prompts -> rollout -> rewards -> advantages -> reference logprobs -> num_iterations x
// (micro-batched loss, backward, clip, AdamW) -> router-bias update -> metrics, samples,
// checkpoint. Outputs in the run directory: <stage>/metrics.jsonl and TensorBoard events,
// <stage>/samples.jsonl, checkpoints/<stage>/step-N/, and the final model in models/<stage>/.
#pragma once
#include <string>

#include "pipelines/grpo/options.h"

namespace r1kit::pipelines {

// Where a stage writes and how it was started (shared by every stage type).
struct StageContext {
  std::string run_dir;      // the recipe's output directory
  std::string stage_name;   // names the stage's folders (checkpoints/<name>, models/<name>)
  bool resume = false;      // continue from the newest complete checkpoint of this stage
};

struct StageResult {
  std::string model_dir;    // the trained model, an HF directory ("" for stages without one)
  std::string data_path;    // a written dataset (rejection_sample), "" otherwise
  Json summary = Json::object();
};

namespace grpo {
StageResult run_grpo(const GrpoOptions& options, const StageContext& context);
}

}  // namespace r1kit::pipelines
