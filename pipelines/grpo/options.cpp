// parse_grpo_options (see options.h).
#include "pipelines/grpo/options.h"

namespace r1kit::pipelines::grpo {

const char* const kR1ZeroTemplate =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. "
    "Assistant:";

GrpoOptions parse_grpo_options(const Json& j, const std::string& where) {
  GrpoOptions o;
  JsonFields f(j, where);
  f.ignore("name");
  f.ignore("type");
  f.require("model", o.model);
  f.require("data", o.data);
  f.get("prompt_field", o.prompt_field);
  f.get("prompt_template", o.prompt_template);
  f.get("rewards", o.rewards);
  f.get("prompts_per_step", o.prompts_per_step);
  f.get("num_generations", o.num_generations);
  f.get("per_device_train_batch_size", o.per_device_train_batch_size);
  f.get("num_iterations", o.num_iterations);
  f.get("max_steps", o.max_steps);
  f.get("dynamic_sampling", o.dynamic_sampling);
  f.get("dynamic_sampling_max_rounds", o.dynamic_sampling_max_rounds);
  f.get("max_completion_length", o.max_completion_length);
  f.get("temperature", o.temperature);
  f.get("top_p", o.top_p);
  f.get("top_k", o.top_k);
  f.get("min_p", o.min_p);
  f.get("repetition_penalty", o.repetition_penalty);
  f.get("stop_strings", o.stop_strings);
  f.get("generation_batch_rows", o.generation_batch_rows);
  f.get("loss_type", o.loss_type);
  f.get("scale_rewards", o.scale_rewards);
  f.get("importance_sampling_level", o.importance_sampling_level);
  f.get("epsilon", o.epsilon);
  f.get("epsilon_high", o.epsilon_high);
  f.get("beta", o.beta);
  f.get("ref_model_sync_steps", o.ref_model_sync_steps);
  f.get("mask_truncated_completions", o.mask_truncated_completions);
  f.get("entropy_coef", o.entropy_coef);
  f.get("learning_rate", o.learning_rate);
  f.get("adam_beta1", o.adam_beta1);
  f.get("adam_beta2", o.adam_beta2);
  f.get("weight_decay", o.weight_decay);
  f.get("max_grad_norm", o.max_grad_norm);
  f.get("lr_scheduler_type", o.lr_scheduler_type);
  f.get("warmup_steps", o.warmup_steps);
  f.get("seed", o.seed);
  f.get("save_steps", o.save_steps);
  f.get("save_total_limit", o.save_total_limit);
  f.get("log_completions", o.log_completions);
  f.get("device", o.device);
  f.finish();
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) f.fail(key, "must be positive, got " + std::to_string(v));
  };
  positive("prompts_per_step", o.prompts_per_step);
  positive("num_generations", o.num_generations);
  positive("per_device_train_batch_size", o.per_device_train_batch_size);
  positive("num_iterations", o.num_iterations);
  positive("max_completion_length", o.max_completion_length);
  positive("dynamic_sampling_max_rounds", o.dynamic_sampling_max_rounds);
  if (o.max_steps < 0) f.fail("max_steps", "must be >= 0");
  if (o.epsilon <= 0 || o.epsilon >= 1) f.fail("epsilon", "must be in (0, 1)");
  if (o.beta < 0) f.fail("beta", "must be >= 0");
  if (o.lr_scheduler_type != "constant" && o.lr_scheduler_type != "linear" && o.lr_scheduler_type != "cosine") {
    f.fail("lr_scheduler_type", "'" + o.lr_scheduler_type + "' is not constant, linear or cosine");
  }
  if (o.prompt_template.find("{prompt}") == std::string::npos) {
    f.fail("prompt_template", "must contain {prompt}");
  }
  return o;
}

}  // namespace r1kit::pipelines::grpo
