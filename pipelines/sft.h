// The `sft` stage: next-token training (pretraining or supervised fine-tuning).
// Data (JSONL or Parquet), in TRL's dataset formats:
//  - {"text"}: packed into fixed-length windows, loss on every token;
//  - {"prompt", "completion"} as text: one row per sequence, right-padded, loss on the
//    completion only;
//  - {"messages": [{role, content}, ...]} (conversational language modeling): rendered with
//    the model's chat template, loss on the assistant turns only (assistant_only_loss; the
//    template's {% generation %} blocks when it has them, else each assistant turn's text);
//  - {"prompt": [messages], "completion": [messages]} (conversational prompt-completion, what
//    rejection_sample writes from conversational prompts): loss on the completion's tokens.
// Conversational rows may carry `tools` and `chat_template_kwargs` (merged over the stage's).
// The model is an HF directory, or created from `model_config` (HF config.json keys) with a
// tokenizer trained on the data (`tokenizer_train`) or loaded (`tokenizer`), which is how a
// recipe makes a tiny base from nothing. Checkpoints and --resume as in GRPO (checkpoint.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "pipelines/options.h"
#include "pipelines/stage.h"
#include "src/dataset_rows.h"
#include "src/tokenizer.h"

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
  std::string data;  // JSONL or Parquet
  std::string text_field = "text";
  std::string prompt_field = "prompt";
  std::string completion_field = "completion";
  std::string messages_field = "messages";
  // Conversations: loss on assistant tokens only (false: on every token of the conversation).
  // TRL's default is false; r1kit's is true, which is what SFT on chats is meant to do.
  bool assistant_only_loss = true;
  Json chat_template_kwargs = Json::object();  // extra chat-template variables (enable_thinking)
  // A Jinja chat template file (TRL's chat_template_path) that becomes the tokenizer's, and so
  // the saved model's: how a model made from model_config gets one. Its eos_token is the
  // tokenizer's <|endoftext|> when the tokenizer had none.
  std::string chat_template_path;
  int64_t seq_len = 128;    // window / max sequence length in tokens
  int64_t batch_size = 16;  // sequences per optimizer step
  int64_t max_steps = 200;
  // Cosine decays to 10% of the peak, as DeepSeek-R1 does for SFT (5e-5 -> 5e-6).
  OptimizerOptions optimizer{
      .learning_rate = 1e-3, .lr_scheduler_type = ScheduleType::kCosine, .warmup_steps = 10, .min_lr_ratio = 0.1};
  MemoryOptions memory;  // bf16, gradient_checkpointing, save_dtype
  CheckpointOptions checkpoints;
  LoraStageOptions lora;  // lora_r > 0: adapters on the frozen `model`
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

// One training sequence: at most seq_len + 1 tokens, and per target position (tokens[1:])
// whether its loss counts.
struct SftExample {
  std::vector<int32_t> tokens;
  std::vector<float> mask;  // [tokens.size() - 1]
};
// The dataset's rows as training sequences (formats above); `eos` ends text rows. Errors name
// the row ("data.jsonl:12").
std::vector<SftExample> sft_examples(const std::vector<DatasetRow>& rows, const SftOptions& o, const Tokenizer& tok,
                                     int32_t eos);

// Reads the sft keys into `o` (distill reads them too, beside its own); checks them.
void read_sft_options(JsonFields& f, SftOptions& o, const StageSetting& setting);
SftOptions parse_sft_options(const Json& j, const StageSetting& setting);
// The paths an sft (or distill) stage reads: data, and model or tokenizer when given.
std::vector<StageInput> sft_inputs(const SftOptions& o);
StageResult run_sft(const SftOptions& options, const StageContext& context, const KdTeacher* teacher = nullptr);

}  // namespace r1kit::pipelines
