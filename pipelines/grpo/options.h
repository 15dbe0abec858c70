// GrpoOptions: one GRPO stage of a recipe. Names follow TRL's GRPOConfig wherever the
// concept is the same, so TRL users find their knobs; defaults are TRL 1.x's converged ones
// (beta 0, loss_type dapo, group scaling, epsilon 0.2, 8 generations, 1 iteration) except
// where r1kit's CPU scale needs another value (noted per field).
#pragma once
#include <cstdint>
#include <string>

#include "src/config.h"

namespace r1kit::pipelines::grpo {

// The R1-Zero template (DeepSeek-R1 Table 1); {prompt} is replaced by the question.
extern const char* const kR1ZeroTemplate;

struct GrpoOptions {
  // What to train and on what.
  std::string model;                    // HF model directory (with tokenizer.json)
  std::string data;                     // prompt JSONL: {"prompt": ..., "answer": ...} or tests
  std::string prompt_field = "prompt";
  std::string prompt_template = kR1ZeroTemplate;  // "{prompt}" alone = the raw prompt
  Json rewards = Json::array({{{"name", "math"}, {"weight", 1.0}}, {{"name", "format"}, {"weight", 1.0}}});
  // Batch: prompts_per_step prompts x num_generations completions per optimizer step.
  int64_t prompts_per_step = 8;         // B (R1-Zero: 32)
  int64_t num_generations = 8;          // G (R1-Zero: 16)
  int64_t per_device_train_batch_size = 16;  // completions per micro-batch (gradient accumulation)
  int64_t num_iterations = 1;           // optimizer passes over one rollout batch (mu)
  int64_t max_steps = 100;              // rollout batches
  // DAPO dynamic sampling: drop groups whose rewards are all equal (no signal) and draw
  // B more prompts until B groups are kept or the cap is reached (then train on fewer).
  bool dynamic_sampling = false;
  int64_t dynamic_sampling_max_rounds = 4;  // rollout rounds per step at most (verl: max_num_gen_batches)
  // Sampling.
  int64_t max_completion_length = 128;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  std::vector<std::string> stop_strings;
  int64_t generation_batch_rows = 64;   // engine slots decoded together
  // Objective.
  std::string loss_type = "dapo";       // grpo | bnpo | dapo | dr_grpo
  std::string scale_rewards = "group";  // group | batch | none
  std::string importance_sampling_level = "token";  // token | sequence (GSPO)
  double epsilon = 0.2;
  double epsilon_high = 0.0;            // 0 = epsilon; DAPO's clip-higher uses 0.28
  double beta = 0.0;                    // KL coefficient; the reference model is loaded only if > 0
  int64_t ref_model_sync_steps = 0;     // reset the reference to the policy every N steps (R1-Zero: 400)
  bool mask_truncated_completions = false;
  double entropy_coef = 0.0;
  // Optimizer (AdamW) and schedule.
  double learning_rate = 1e-6;          // TRL's default; tiny CPU models want ~1e-4
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.99;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
  std::string lr_scheduler_type = "constant";  // constant | linear | cosine
  int64_t warmup_steps = 0;
  // Housekeeping.
  uint64_t seed = 0;
  int64_t save_steps = 0;               // checkpoint every N steps (0: only at the end)
  int64_t save_total_limit = 2;         // checkpoints kept
  int64_t log_completions = 2;          // completions per step written to samples.jsonl
  std::string device = "auto";
};

GrpoOptions parse_grpo_options(const Json& j, const std::string& where);

}  // namespace r1kit::pipelines::grpo
