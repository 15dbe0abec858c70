// The GRPO stage: run_grpo reads top to bottom like the algorithm (DeepSeekMath Alg. 1):
// prompts -> rollout -> rewards -> advantages -> reference logprobs -> num_iterations x
// (micro-batched loss, backward, clip, AdamW) -> router-bias update -> metrics, samples,
// checkpoint. Outputs in the run directory: <stage>/metrics.jsonl and TensorBoard events,
// <stage>/samples.jsonl, checkpoints/<stage>/step-N/, and the final model in models/<stage>/.
#pragma once
#include "pipelines/grpo/options.h"
#include "pipelines/stage.h"

namespace r1kit::pipelines::grpo {

StageResult run_grpo(const GrpoOptions& options, const StageContext& context);

}  // namespace r1kit::pipelines::grpo
