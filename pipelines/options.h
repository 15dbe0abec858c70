// Typed option pieces that stages compose instead of re-declaring fields: each piece has ONE
// read_* function that takes its keys from a stage's JsonFields (flat keys, TRL's names, as
// recipes always had them) and checks their ranges, so every stage that embeds a piece
// accepts and rejects exactly the same things. A stage's own parse function reads its pieces
// and its own keys, then finish() rejects the rest. Pieces specific to one stage live beside
// it (grpo/loss.h LossOptions, grpo/advantages.h AdvantageOptions).
// Not here: the option structs of the stages themselves (pipelines/<stage>.h).
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipelines/schedule.h"
#include "policy/lora.h"
#include "rollout/engine.h"
#include "rollout/sampler.h"
#include "src/config.h"

namespace r1kit::rewards {
class Scorer;
}

namespace r1kit::pipelines {

// The prompt dataset and how a row becomes the policy's prompt (PromptData).
// What happens to a prompt longer than max_prompt_length tokens: `left` keeps its last
// max_prompt_length tokens (TRL's truncation side), `error` stops before the stage starts
// naming the file and line, `drop` leaves the row out of the dataset (counted in the log).
enum class Truncation { left, error, drop };
inline constexpr EnumName<Truncation> kTruncationNames[] = {
    {"left", Truncation::left}, {"error", Truncation::error}, {"drop", Truncation::drop}};

// A row's prompt is text (TRL's "standard" format: prompt_template applies, e.g. for an
// R1-Zero base model) or a list of {role, content} messages ("conversational": rendered with
// the model's chat template and its generation prompt, with the row's `tools` and the
// recipe's and the row's chat_template_kwargs, the row's keys winning).
struct PromptOptions {
  std::string data;                            // JSONL or Parquet of prompts (required)
  std::string prompt_field = "prompt";         // the row's question: text or messages
  std::string prompt_template = "{prompt}";    // text prompts: {prompt} is replaced by the question
  Json chat_template_kwargs = Json::object();  // conversational prompts: extra template variables
  int64_t max_prompt_length = 0;               // tokens of the rendered prompt; 0 = no limit but the window
  Truncation truncation = Truncation::left;
};
void read_prompt_options(JsonFields& f, PromptOptions& o);
// `chat_template_kwargs` (a JSON object of extra chat-template variables), for every stage that
// renders conversations (prompt-reading stages, sft / distill).
void read_chat_template_kwargs(JsonFields& f, Json& kwargs);

// LoRA (policy/lora.h), TRL's peft_config in a recipe: lora_r > 0 trains adapters on the
// frozen model instead of its weights (lora_alpha, lora_dropout, lora_target_modules: PEFT's
// module names or "all-linear"); the stage's model is then a PEFT adapter directory, or with
// merge_adapter the merged plain model. A stage whose model is an adapter directory goes on
// training those adapters (lora_r 0: merges them and trains every weight).
struct LoraStageOptions {
  policy::LoraOptions lora;
  bool merge_adapter = false;
};
void read_lora_options(JsonFields& f, LoraStageOptions& o);
// Adds the adapters to `model` (loaded from `model_dir`) or keeps / merges the ones it came
// with, as `o` says; logs the trainable parameter count naming `stage`.
void prepare_lora(policy::CausalLM& model, const LoraStageOptions& o, uint64_t seed, const std::string& stage);

// Generation: the sampler's options plus the engine's batch. The completion-length cap is
// `max_completion_length` in GRPO (TRL's name) and `max_new_tokens` in the other stages, so
// the caller names the key. Only the keys a recipe may set are read (temperature, top_p,
// top_k, min_p, repetition_penalty, the cap, stop_strings, generation_batch_rows,
// max_model_len, max_memory).
struct GenerationOptions {
  rollout::SamplingOptions sampling;
  // The sampling keys the recipe set (temperature, top_p, top_k, min_p, repetition_penalty);
  // for the others a model's generation_config.json gives the value when it has one.
  std::vector<std::string> recipe_sampling_keys;
  // The engine: generation_batch_rows (slots decoded together), max_model_len (the window for
  // prompt + completion; 0 = max_position_embeddings) and max_memory ("16GiB" or bytes; the
  // KV cache + logits budget, default 90% of available memory).
  rollout::EngineOptions engine;

  // `sampling` with the defaults of MODEL_DIR/generation_config.json for the keys the recipe
  // did not set (transformers' meaning; do_sample is not read: a stage that samples samples).
  // Each value taken is logged naming `stage` and the file; a value out of range is an error
  // naming the file and key.
  rollout::SamplingOptions sampling_for(const std::string& model_dir, const std::string& stage) const;
};
void read_generation_options(JsonFields& f, GenerationOptions& o, const char* length_key);

// The rewards: the recipe's list [{"name", "weight", ...options}], parsed into a Scorer once,
// so an unknown reward or option fails before any stage runs. Shared (const) by the copies of
// the options a stage keeps.
struct RewardSpec {
  Json spec = Json::array({{{"name", "math"}, {"weight", 1.0}}, {{"name", "format"}, {"weight", 1.0}}});
  std::shared_ptr<const rewards::Scorer> scorer;  // built from spec by read_rewards
  // A reward that runs out of time scores 0 without judging anything; a stage stops when one
  // reward timed out on more than this share of a step's (or batch's) completions.
  double max_reward_failure_fraction = 0.1;

  // The scorer's reward names, in spec order (the first is the task's checker).
  std::vector<std::string> names() const;
};
void read_rewards(JsonFields& f, RewardSpec& o);

// AdamW and its learning-rate schedule (TRL's keys). Stages start from their own defaults.
struct OptimizerOptions {
  double learning_rate = 1e-6;  // peak; must be > 0
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;  // gradient clipping by global norm
  ScheduleType lr_scheduler_type = ScheduleType::kConstant;
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;  // cosine floor (a stage's constant, not a key: sft decays to 10%)
  // A step whose gradient norm is not finite is skipped (no update); this many in a row stop
  // the stage with an error, before a broken model is saved.
  int64_t max_nonfinite_steps = 3;

  LrSchedule schedule(int64_t max_steps) const;
};
void read_optimizer_options(JsonFields& f, OptimizerOptions& o);

// How a training stage holds its model in memory (sft, distill, grpo).
//  - bf16: forward and backward in bf16 over fp32 master weights and fp32 AdamW states
//    (pipelines/mixed_precision.h); gradients are accumulated and reduced in fp32 and the
//    bf16 copy, which the rollout engine samples from, is refreshed after each step. Unset:
//    on for CUDA, off on CPU. false: everything in fp32.
//  - gradient_checkpointing (TRL's name): each decoder layer's activations are recomputed in
//    backward instead of kept (policy/checkpointing.h).
//  - zero_stage: 0 (every rank holds everything), 1 (AdamW states sharded over the ranks), 2
//    (+ gradients), 3 (+ the decoder layers' weights, gathered layer by layer): zero.h.
//  - save_dtype: the final model on disk: "auto" (the dtype the model was loaded in, from its
//    config.json; float32 for a model made from model_config), "float32" or "bfloat16".
//    Checkpoints always hold fp32 weights, so that a resume is exact.
struct MemoryOptions {
  std::optional<bool> bf16;
  bool gradient_checkpointing = false;
  int64_t zero_stage = 0;
  std::string save_dtype = "auto";

  // Whether a stage on `device` computes in bf16.
  bool bf16_on(const c10::Device& device) const { return bf16.value_or(device.is_cuda()); }
};
void read_memory_options(JsonFields& f, MemoryOptions& o);

// Checkpoints of a training stage (checkpoint.h).
struct CheckpointOptions {
  int64_t save_steps = 0;        // every N steps (0: only at the end)
  int64_t save_total_limit = 2;  // checkpoints kept
};
void read_checkpoint_options(JsonFields& f, CheckpointOptions& o);

// Range checks the pieces and stages share; each fails naming the key.
void require_positive(JsonFields& f, const char* key, int64_t value);
void require_non_negative(JsonFields& f, const char* key, int64_t value);

}  // namespace r1kit::pipelines
