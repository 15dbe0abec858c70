// `r1kit generate --model DIR --prompt TEXT [-n N] [--temperature T] [--top-p P] [--top-k K]
// [--min-p P] [--max-new-tokens M] [--seed S] [--device D] [--json]` (rollout/generate_command)
// and `r1kit bench rollout [--device D] [--json]` (bench/bench_rollout), which hangs off the
// `bench` command that cmd_bench.cpp creates, so main.cpp must add this command after it.
#include "bench/bench_rollout.h"
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

  auto b = std::make_shared<bench::BenchRolloutArgs>();
  CLI::App* bench = app.get_subcommand("bench");
  CLI::App* roll = bench->add_subcommand("rollout", "generation tok/s vs transformers generate (qwen3_moe, deepseek_v3)");
  roll->add_option("--device", b->device, "cpu | cuda | auto")->capture_default_str();
  roll->add_option("--prompts", b->prompts, "B prompts")->capture_default_str();
  roll->add_option("--group", b->group, "G samples per prompt")->capture_default_str();
  roll->add_option("--prompt-tokens", b->prompt_tokens)->capture_default_str();
  roll->add_option("--new-tokens", b->new_tokens)->capture_default_str();
  roll->add_option("--threads", b->threads, "CPU threads, both sides (0 = default)")->capture_default_str();
  roll->add_flag("--no-peer", b->skip_peer, "r1kit only");
  roll->add_flag("--json", b->json, "print only the JSON line");
  roll->callback([b] { exit_code() = bench::bench_rollout(*b); });
}

}  // namespace r1kit::cli
