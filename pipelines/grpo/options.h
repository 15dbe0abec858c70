// GrpoOptions: one GRPO stage of a recipe. Names follow TRL's GRPOConfig wherever the
// concept is the same, so TRL users find their knobs; defaults are TRL 1.x's converged ones
// (beta 0, loss_type dapo, group scaling, epsilon 0.2, 8 generations, 1 iteration) except
// where r1kit's CPU scale needs another value (noted per field).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pipelines/completion_stats.h"
#include "pipelines/grpo/advantages.h"
#include "pipelines/grpo/loss.h"
#include "pipelines/options.h"
#include "pipelines/stage.h"

namespace r1kit::pipelines::grpo {

// The R1-Zero template (DeepSeek-R1 Table 1); {prompt} is replaced by the question.
extern const char* const kR1ZeroTemplate;

struct GrpoOptions {
  // What to train and on what.
  std::string model;                                          // HF model directory (with tokenizer.json)
  PromptOptions prompts{.prompt_template = kR1ZeroTemplate};  // "{prompt}" alone = the raw prompt
  RewardSpec rewards;                                         // the first is the task's checker (accuracy)
  // Batch: prompts_per_step prompts x num_generations completions per optimizer step.
  int64_t prompts_per_step = 8;              // B (R1-Zero: 32); a multiple of the world size
  int64_t num_generations = 8;               // G (R1-Zero: 16); >= 2, a group of one has no spread
  int64_t per_device_train_batch_size = 16;  // completions per micro-batch (gradient accumulation)
  int64_t num_iterations = 1;                // optimizer passes over one rollout batch (mu)
  int64_t max_steps = 100;                   // rollout batches
  // DAPO dynamic sampling: drop groups whose rewards are all equal (no signal) and draw
  // B more prompts until B groups are kept or the cap is reached (then train on fewer).
  bool dynamic_sampling = false;
  int64_t dynamic_sampling_max_rounds = 4;  // rollout rounds per step at most (verl: max_num_gen_batches)
  // Sampling; the cap is `max_completion_length` (TRL). temperature > 0: the loss trains on
  // the policy's logprobs at the sampling temperature.
  GenerationOptions generation{.sampling = {.max_new_tokens = 128}};
  // Objective.
  AdvantageOptions advantages;       // scale_rewards
  LossOptions loss;                  // loss_type, importance_sampling_level, epsilon(_high), beta, entropy_coef
  int64_t ref_model_sync_steps = 0;  // reset the reference to the policy every N steps (R1-Zero: 400)
  bool mask_truncated_completions = false;
  // Optimizer (AdamW) and schedule: TRL's default learning rate; tiny CPU models want ~1e-4.
  OptimizerOptions optimizer{.learning_rate = 1e-6, .adam_beta2 = 0.99};
  MemoryOptions memory;  // bf16, gradient_checkpointing, save_dtype
  CheckpointOptions checkpoints;
  LoraStageOptions lora;  // lora_r > 0: adapters on a frozen policy; beta > 0 then needs no reference copy
  // Housekeeping.
  uint64_t seed = 0;
  int64_t log_completions = 2;   // completions per step written to samples.jsonl
  CompletionStatsOptions stats;  // difficulty_field, reflection_patterns: per-step metrics
  std::string device = "auto";
};

GrpoOptions parse_grpo_options(const Json& j, const StageSetting& setting);
// The paths a grpo stage reads: model and data.
std::vector<StageInput> grpo_inputs(const GrpoOptions& o);

}  // namespace r1kit::pipelines::grpo
