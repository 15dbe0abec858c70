// parse_grpo_options (see options.h).
#include "pipelines/grpo/options.h"

namespace r1kit::pipelines::grpo {

const char* const kR1ZeroTemplate =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. "
    "Assistant:";

GrpoOptions parse_grpo_options(const Json& j, const StageSetting& setting) {
  GrpoOptions o;
  JsonFields f(j, setting.where);
  f.ignore("name");
  f.ignore("type");
  f.require("model", o.model);
  read_prompt_options(f, o.prompts);
  read_rewards(f, o.rewards);
  f.get("prompts_per_step", o.prompts_per_step);
  f.get("num_generations", o.num_generations);
  f.get("per_device_train_batch_size", o.per_device_train_batch_size);
  f.get("num_iterations", o.num_iterations);
  f.get("max_steps", o.max_steps);
  f.get("dynamic_sampling", o.dynamic_sampling);
  f.get("dynamic_sampling_max_rounds", o.dynamic_sampling_max_rounds);
  read_generation_options(f, o.generation, "max_completion_length");
  f.get("scale_rewards", o.advantages.scale_rewards, kScaleRewardsNames);
  read_loss_options(f, o.loss);
  o.loss.max_completion_length = o.generation.sampling.max_new_tokens;  // dr_grpo's normaliser
  f.get("ref_model_sync_steps", o.ref_model_sync_steps);
  f.get("mask_truncated_completions", o.mask_truncated_completions);
  read_optimizer_options(f, o.optimizer);
  read_memory_options(f, o.memory);
  read_lora_options(f, o.lora);
  read_checkpoint_options(f, o.checkpoints);
  f.get("seed", o.seed);
  f.get("log_completions", o.log_completions);
  read_completion_stats_options(f, o.stats);
  f.get("device", o.device);
  f.finish();
  require_positive(f, "prompts_per_step", o.prompts_per_step);
  if (o.memory.zero_stage >= 2 && o.dynamic_sampling && setting.world_size > 1) {
    f.fail("zero_stage",
           "2 and 3 reduce gradients after every micro-batch, so every rank must run as many; "
           "dynamic_sampling gives the ranks different batches: use zero_stage 1 with it");
  }
  require_positive(f, "num_generations", o.num_generations);
  if (o.num_generations < 2) {
    f.fail("num_generations", "must be >= 2: a group of one completion has no spread, so no advantage");
  }
  if (o.prompts_per_step % setting.world_size != 0) {
    f.fail("prompts_per_step", std::to_string(o.prompts_per_step) + " prompts do not split evenly over " +
                                   std::to_string(setting.world_size) +
                                   " ranks (groups never split; use a multiple of the world size)");
  }
  require_positive(f, "per_device_train_batch_size", o.per_device_train_batch_size);
  require_positive(f, "num_iterations", o.num_iterations);
  require_non_negative(f, "max_steps", o.max_steps);
  require_positive(f, "dynamic_sampling_max_rounds", o.dynamic_sampling_max_rounds);
  require_non_negative(f, "ref_model_sync_steps", o.ref_model_sync_steps);
  if (o.lora.lora.r > 0 && o.ref_model_sync_steps > 0) {
    f.fail("ref_model_sync_steps", "cannot reset the reference under LoRA (the reference is the frozen base)");
  }
  require_non_negative(f, "log_completions", o.log_completions);
  if (!(o.generation.sampling.temperature > 0)) {
    f.fail("temperature",
           "must be > 0 in grpo: the loss trains on the policy's logprobs at the sampling "
           "temperature (greedy decoding has none)");
  }
  return o;
}

std::vector<StageInput> grpo_inputs(const GrpoOptions& o) {
  return {{"model", o.model, StageInput::Kind::kModelDir}, {"data", o.prompts.data, StageInput::Kind::kFile}};
}

}  // namespace r1kit::pipelines::grpo
