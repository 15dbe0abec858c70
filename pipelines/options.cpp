// The option pieces' read functions (see options.h).
#include "pipelines/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "policy/causal_lm.h"
#include "rewards/scorer.h"
#include "src/byte_size.h"
#include "src/logging.h"

namespace r1kit::pipelines {

void require_positive(JsonFields& f, const char* key, int64_t value) {
  if (value <= 0) f.fail(key, "must be positive, got " + std::to_string(value));
}

void require_non_negative(JsonFields& f, const char* key, int64_t value) {
  if (value < 0) f.fail(key, "must be >= 0, got " + std::to_string(value));
}

void read_chat_template_kwargs(JsonFields& f, Json& kwargs) {
  if (const Json* kw = f.raw("chat_template_kwargs"); kw != nullptr && !kw->is_null()) {
    if (!kw->is_object()) f.fail("chat_template_kwargs", "must be an object, e.g. {\"enable_thinking\": false}");
    kwargs = *kw;
  }
}

void read_prompt_options(JsonFields& f, PromptOptions& o) {
  f.require("data", o.data);
  f.get("prompt_field", o.prompt_field);
  f.get("prompt_template", o.prompt_template);
  if (o.prompt_template.find("{prompt}") == std::string::npos) f.fail("prompt_template", "must contain {prompt}");
  read_chat_template_kwargs(f, o.chat_template_kwargs);
  f.get("max_prompt_length", o.max_prompt_length);
  f.get("truncation", o.truncation, kTruncationNames);
  require_non_negative(f, "max_prompt_length", o.max_prompt_length);
}

void read_memory_options(JsonFields& f, MemoryOptions& o) {
  f.get("bf16", o.bf16);
  f.get("gradient_checkpointing", o.gradient_checkpointing);
  f.get("save_dtype", o.save_dtype);
  f.get("zero_stage", o.zero_stage);
  if (o.zero_stage < 0 || o.zero_stage > 3)
    f.fail("zero_stage", "must be 0, 1, 2 or 3, got " + std::to_string(o.zero_stage));
  if (o.save_dtype != "auto" && o.save_dtype != "float32" && o.save_dtype != "bfloat16") {
    f.fail("save_dtype", "expected auto, float32 or bfloat16, got \"" + o.save_dtype + "\"");
  }
}

void read_lora_options(JsonFields& f, LoraStageOptions& o) {
  f.get("lora_r", o.lora.r);
  f.get("lora_alpha", o.lora.alpha);
  f.get("lora_dropout", o.lora.dropout);
  if (const Json* t = f.raw("lora_target_modules"); t != nullptr && !t->is_null()) {
    if (t->is_string()) {
      o.lora.target_modules = {t->get<std::string>()};
    } else {
      f.get("lora_target_modules", o.lora.target_modules);
    }
    if (o.lora.target_modules.empty()) f.fail("lora_target_modules", "is empty");
  }
  f.get("merge_adapter", o.merge_adapter);
  require_non_negative(f, "lora_r", o.lora.r);
  if (o.lora.alpha <= 0) f.fail("lora_alpha", "must be positive");
  if (o.lora.dropout < 0 || o.lora.dropout >= 1) f.fail("lora_dropout", "must be in [0, 1)");
}

void prepare_lora(policy::CausalLM& model, const LoraStageOptions& o, uint64_t seed, const std::string& stage) {
  const int64_t total = model.num_parameters();
  if (policy::has_lora(model)) {
    const policy::LoraOptions had = policy::lora_options(model);
    if (o.lora.r == 0) {
      policy::merge_lora(model);
      log::info("{}: the model's LoRA adapters are merged; every weight trains", stage);
      return;
    }
    if (had.r != o.lora.r) {
      throw Error(fmt::format("{}: the model is a LoRA adapter of rank {}, the stage asks for lora_r {}", stage, had.r,
                              o.lora.r));
    }
    log::info("{}: training the model's LoRA adapters further (r {}, {} modules)", stage, had.r,
              had.target_modules.size());
  } else if (o.lora.r > 0) {
    if (model.source_dir().empty()) {
      throw Error(stage + ": LoRA needs a base model directory to adapt (model), not a model made from model_config");
    }
    policy::add_lora(model, o.lora, seed);
  } else {
    return;
  }
  const int64_t trainable = policy::num_trainable_parameters(model);
  log::info("{}: LoRA r {} alpha {}: {} trainable parameters ({:.2f}% of {})", stage, o.lora.r, o.lora.alpha, trainable,
            100.0 * static_cast<double>(trainable) / static_cast<double>(total), total);
}

namespace {
constexpr const char* kSamplingKeys[] = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty"};
}  // namespace

rollout::SamplingOptions GenerationOptions::sampling_for(const std::string& model_dir, const std::string& stage) const {
  rollout::SamplingOptions s = sampling;
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  if (!std::filesystem::exists(path)) return s;
  const Json gen = read_json_file(path);
  if (!gen.is_object()) return s;
  JsonFields f(gen, path);  // never finish()ed: the file's other keys are transformers' business
  auto take = [&](const char* key, auto& field) {
    const Json* v = f.raw(key);
    const bool recipe_set =
        std::find(recipe_sampling_keys.begin(), recipe_sampling_keys.end(), key) != recipe_sampling_keys.end();
    if (v == nullptr || v->is_null() || recipe_set) return;
    f.get(key, field);
    log::info("{}: {} {} from {} (the recipe sets none)", stage, key, v->dump(), path);
  };
  take("temperature", s.temperature);
  take("top_p", s.top_p);
  take("top_k", s.top_k);
  take("min_p", s.min_p);
  take("repetition_penalty", s.repetition_penalty);
  if (const rollout::SamplingOptionError e = rollout::check(s); !e.key.empty()) f.fail(e.key, e.what);
  return s;
}

void read_generation_options(JsonFields& f, GenerationOptions& o, const char* length_key) {
  for (const char* key : kSamplingKeys) {
    if (f.has(key)) o.recipe_sampling_keys.push_back(key);
  }
  rollout::SamplingOptions& s = o.sampling;
  f.get("temperature", s.temperature);
  f.get("top_p", s.top_p);
  f.get("top_k", s.top_k);
  f.get("min_p", s.min_p);
  f.get("repetition_penalty", s.repetition_penalty);
  f.get(length_key, s.max_new_tokens);
  f.get("stop_strings", s.stop_strings);
  f.get("generation_batch_rows", o.engine.max_batch_rows);
  f.get("max_model_len", o.engine.max_model_len);
  f.get("max_kv_tokens", o.engine.max_kv_tokens);
  f.get("kv_block_size", o.engine.kv_block_size);
  if (const Json* memory = f.raw("max_memory"); memory != nullptr && !memory->is_null()) {
    if (memory->is_number_integer()) {
      o.engine.max_memory_bytes = memory->get<int64_t>();
    } else if (memory->is_string()) {
      o.engine.max_memory_bytes = parse_byte_size(memory->get<std::string>(), f.path("max_memory"));
    } else {
      f.fail("max_memory", "must be a size such as \"16GiB\" or a number of bytes");
    }
  }
  const rollout::SamplingOptionError e = rollout::check(s);
  if (!e.key.empty()) f.fail(e.key == "max_new_tokens" ? length_key : e.key, e.what);
  require_positive(f, "generation_batch_rows", o.engine.max_batch_rows);
  require_non_negative(f, "max_model_len", o.engine.max_model_len);
  require_non_negative(f, "max_kv_tokens", o.engine.max_kv_tokens);
  require_positive(f, "kv_block_size", o.engine.kv_block_size);
  require_non_negative(f, "max_memory", o.engine.max_memory_bytes);
}

std::vector<std::string> RewardSpec::names() const {
  std::vector<std::string> out;
  for (const auto& e : scorer->entries()) out.push_back(e.name);
  return out;
}

void read_rewards(JsonFields& f, RewardSpec& o) {
  f.get("rewards", o.spec);
  f.get("max_reward_failure_fraction", o.max_reward_failure_fraction);
  if (!(o.max_reward_failure_fraction >= 0 && o.max_reward_failure_fraction <= 1)) {
    f.fail("max_reward_failure_fraction", "must be in [0, 1]");
  }
  o.scorer = std::make_shared<const rewards::Scorer>(rewards::Scorer::from_json(o.spec, f.path("rewards")));
}

LrSchedule OptimizerOptions::schedule(int64_t max_steps) const {
  return {learning_rate, lr_scheduler_type, warmup_steps, max_steps, min_lr_ratio};
}

void read_optimizer_options(JsonFields& f, OptimizerOptions& o) {
  f.get("learning_rate", o.learning_rate);
  f.get("adam_beta1", o.adam_beta1);
  f.get("adam_beta2", o.adam_beta2);
  f.get("weight_decay", o.weight_decay);
  f.get("max_grad_norm", o.max_grad_norm);
  f.get("lr_scheduler_type", o.lr_scheduler_type, kScheduleTypeNames);
  f.get("warmup_steps", o.warmup_steps);
  f.get("max_nonfinite_steps", o.max_nonfinite_steps);
  auto finite = [&](const char* key, double v) {
    if (!std::isfinite(v)) f.fail(key, "must be a finite number");
  };
  finite("learning_rate", o.learning_rate);
  if (!(o.learning_rate > 0)) f.fail("learning_rate", "must be > 0, got " + Json(o.learning_rate).dump());
  if (!(o.adam_beta1 >= 0 && o.adam_beta1 < 1)) f.fail("adam_beta1", "must be in [0, 1)");
  if (!(o.adam_beta2 >= 0 && o.adam_beta2 < 1)) f.fail("adam_beta2", "must be in [0, 1)");
  finite("weight_decay", o.weight_decay);
  if (!(o.weight_decay >= 0)) f.fail("weight_decay", "must be >= 0");
  finite("max_grad_norm", o.max_grad_norm);
  if (!(o.max_grad_norm > 0)) f.fail("max_grad_norm", "must be > 0");
  require_non_negative(f, "warmup_steps", o.warmup_steps);
  require_positive(f, "max_nonfinite_steps", o.max_nonfinite_steps);
}

void read_checkpoint_options(JsonFields& f, CheckpointOptions& o) {
  f.get("save_steps", o.save_steps);
  f.get("save_total_limit", o.save_total_limit);
  require_non_negative(f, "save_steps", o.save_steps);
  require_positive(f, "save_total_limit", o.save_total_limit);
}

}  // namespace r1kit::pipelines
