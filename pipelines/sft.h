// The `sft` stage: next-token training (pretraining or supervised fine-tuning).
// Data: JSONL rows {"text"} (packed into fixed-length windows, loss on every token) or
// {"prompt", "completion"} (one row per sequence, right-padded, loss on the completion only).
// The model is an HF directory, or created from `model_config` (HF config.json keys) with a
// tokenizer trained on the data (`tokenizer_train`) or loaded (`tokenizer`), which is how a
// recipe makes a tiny base from nothing. Checkpoints and --resume as in GRPO (checkpoint.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "pipelines/options.h"
#include "pipelines/stage.h"

namespace r1kit::policy {
class CausalLM;
}

namespace r1kit::pipelines {

struct SftOptions {
  std::string model;                   // HF model directory to start from, or "" with model_config
  Json model_config;                   // HF config.json keys for a fresh model (vocab_size set from the tokenizer)
  std::string tokenizer;               // tokenizer.json (or dir); "" = the model's, or train one
  int64_t tokenizer_vocab_size = 512;  // when training a tokenizer on the data
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<think>", "</think>", "<answer>", "</answer>"};
  std::string data;  // JSONL
  std::string text_field = "text";
  std::string prompt_field = "prompt";
  std::string completion_field = "completion";
  int64_t seq_len = 128;    // window / max sequence length in tokens
  int64_t batch_size = 16;  // sequences per optimizer step
  int64_t max_steps = 200;
  // Cosine decays to 10% of the peak, as DeepSeek-R1 does for SFT (5e-5 -> 5e-6).
  OptimizerOptions optimizer{
      .learning_rate = 1e-3, .lr_scheduler_type = ScheduleType::kCosine, .warmup_steps = 10, .min_lr_ratio = 0.1};
  CheckpointOptions checkpoints;
  uint64_t seed = 0;
  std::string device = "auto";
};

// Token-level knowledge distillation, used by the distill stage (distill.h): the loss on the
// masked tokens becomes (1 - weight) * NLL + weight * T^2 * KL(teacher_T || student_T)
// (Hinton et al. 2015: forward KL between temperature-softened distributions).
struct KdTeacher {
  std::shared_ptr<policy::CausalLM> model;  // frozen; must share the student's tokenizer
  double weight = 0.5;
  double temperature = 1.0;
};

// Reads the sft keys into `o` (distill reads them too, beside its own); checks them.
void read_sft_options(JsonFields& f, SftOptions& o, const StageSetting& setting);
SftOptions parse_sft_options(const Json& j, const StageSetting& setting);
// The paths an sft (or distill) stage reads: data, and model or tokenizer when given.
std::vector<StageInput> sft_inputs(const SftOptions& o);
StageResult run_sft(const SftOptions& options, const StageContext& context, const KdTeacher* teacher = nullptr);

}  // namespace r1kit::pipelines
