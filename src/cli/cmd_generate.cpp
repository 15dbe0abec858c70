// `r1kit generate --model DIR --prompt TEXT [-n N] [--temperature T] [--top-p P] [--top-k K]
// [--min-p P] [--max-new-tokens M] [--seed S] [--device D] [--json]` (rollout/generate_command).
#include "rollout/generate_command.h"
#include "src/cli/commands.h"

namespace r1kit::cli {

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<rollout::GenerateCommandArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "sample completions from a model directory");
  cmd->add_option("--model,-m", a->model, "Hugging Face model directory (with tokenizer.json)")->required();
  cmd->add_option("--prompt,-p", a->prompts, "prompt text (repeat for several)")->required();
  cmd->add_option("-n,--samples", a->samples, "completions per prompt")->capture_default_str();
  cmd->add_option("--temperature,-t", a->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", a->top_p, "nucleus mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "keep k tokens (0 = off)")->capture_default_str();
  cmd->add_option("--min-p", a->min_p, "drop below min-p x max prob (0 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", a->repetition_penalty, "HF CTRL penalty (1 = off)")->capture_default_str();
  cmd->add_option("--max-new-tokens", a->max_new_tokens)->capture_default_str();
  cmd->add_option("--stop", a->stop, "stop string (repeatable)");
  cmd->add_option("--seed,-s", a->seed)->capture_default_str();
  cmd->add_option("--device,-d", a->device, "auto | cpu | cuda[:i]")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "auto | float32 | bfloat16")->capture_default_str();
  cmd->add_option("--max-batch-rows", a->max_batch_rows, "sequences decoded together")->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads (0 = LibTorch default)")->capture_default_str();
  cmd->add_flag("--json", a->json, "one JSON object per completion (text, token_ids, logprobs, ...)");
  cmd->callback([a] { exit_code() = rollout::run_generate_command(*a); });
}

}  // namespace r1kit::cli
