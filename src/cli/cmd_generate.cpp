// `r1kit generate --model DIR --prompt TEXT [-n N] [--temperature T] [--top-p P] [--top-k K]
// [--min-p P] [--max-new-tokens M] [--seed S] [--device D] [--max-kv-tokens N] [--json]`: sample completions of
// text prompts from a Hugging Face model directory (weights + tokenizer.json) with
// rollout::Engine, printed as text or one JSON object per completion. Prompts are used as
// given (no chat template). The sampling flags bind straight to rollout::SamplingOptions's
// fields, so its defaults and rollout::validate are the only ones.
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "rollout/engine.h"
#include "rollout/sampler.h"
#include "src/byte_size.h"
#include "src/cli/commands.h"
#include "src/device.h"
#include "src/error.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::cli {
namespace {

struct GenerateCommandArgs {
  std::string model;                  // HF model directory (config.json, safetensors, tokenizer.json)
  std::vector<std::string> prompts;   // one or more prompt texts
  int64_t samples = 1;                // completions per prompt (G)
  rollout::SamplingOptions sampling;  // --temperature, --top-p, ..., --stop, --seed
  std::string device = "auto";        // auto | cpu | cuda[:i]
  std::string dtype = "auto";         // auto | float32 | bfloat16
  rollout::EngineOptions engine;      // --max-batch-rows, --max-model-len, --max-kv-tokens, --kv-block-size
  std::string max_memory;             // "16GiB", bytes; "" = 90% of available memory
  int64_t threads = 0;                // CPU threads (0 = LibTorch's default)
  bool json = false;                  // one JSON object per completion
};

// Returns the exit code; bad input throws r1kit::Error.
int run_generate(const GenerateCommandArgs& a) {
  if (a.model.empty()) throw Error("generate: --model DIR is required");
  if (a.prompts.empty()) throw Error("generate: at least one --prompt is required");
  if (a.samples < 1) throw Error("generate: -n must be >= 1");
  rollout::validate(a.sampling, "generate");
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const Tokenizer tokenizer = Tokenizer::load(a.model);
  const DeviceChoice device = resolve_device(a.device, a.dtype);
  auto model = policy::load_pretrained(a.model, device);
  if (const std::string bad = model->first_nonfinite_parameter(); !bad.empty()) {
    throw Error("generate: " + a.model + ": weight " + bad +
                " has non-finite values (a diverged model); refusing to sample from it");
  }

  std::vector<std::vector<int32_t>> prompts;
  for (const auto& text : a.prompts) {
    prompts.push_back(tokenizer.encode(text, /*add_special_tokens=*/true));
    if (prompts.back().empty()) throw Error("generate: a prompt encodes to no tokens");
  }
  rollout::EngineOptions eo = a.engine;
  if (!a.max_memory.empty()) eo.max_memory_bytes = parse_byte_size(a.max_memory, "generate: --max-memory");
  rollout::Engine engine(model, eo, [&tokenizer](const std::vector<int32_t>& ids) {
    return tokenizer.decode(ids, /*skip_special_tokens=*/true);
  });
  const rollout::Rollouts r = engine.generate(prompts, a.samples, a.sampling);

  for (const rollout::Rollout& row : r.rows) {
    if (a.json) {
      const Json j = {{"prompt_index", row.prompt_index},
                      {"sample_index", row.sample_index},
                      {"prompt", a.prompts[row.prompt_index]},
                      {"text", row.text},
                      {"prompt_token_ids", row.prompt_ids},
                      {"token_ids", row.completion_ids},
                      {"logprobs", row.logprobs},
                      {"finish_reason", to_string(row.finish)}};
      std::printf("%s\n", dump_text(j).c_str());
    } else {
      std::printf("=== prompt %lld, sample %lld (%zu tokens, %s) ===\n%s%s\n", static_cast<long long>(row.prompt_index),
                  static_cast<long long>(row.sample_index), row.completion_ids.size(), to_string(row.finish).c_str(),
                  a.prompts[row.prompt_index].c_str(), row.text.c_str());
    }
  }
  const double block_mib = static_cast<double>(r.cache.block_size * r.cache.bytes_per_token) / (1 << 20);
  log::info(
      "generate: {} completions, {} tokens in {:.2f} s ({:.1f} tok/s) on {}; KV cache {} B/token, pool {} blocks of {} "
      "({:.1f} MiB, peak {:.1f} MiB), {} preemptions",
      r.rows.size(), r.generated_tokens, r.seconds, static_cast<double>(r.generated_tokens) / r.seconds,
      to_string(device), r.cache.bytes_per_token, r.cache.blocks, r.cache.block_size,
      static_cast<double>(r.cache.total_bytes) / (1 << 20), static_cast<double>(r.cache.peak_blocks) * block_mib,
      r.cache.preemptions);
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateCommandArgs>();
  rollout::SamplingOptions& s = a->sampling;
  CLI::App* cmd = app.add_subcommand("generate", "sample completions from a model directory");
  cmd->add_option("--model,-m", a->model, "Hugging Face model directory (with tokenizer.json)")->required();
  cmd->add_option("--prompt,-p", a->prompts, "prompt text (repeat for several)")->required();
  cmd->add_option("-n,--samples", a->samples, "completions per prompt")->capture_default_str();
  cmd->add_option("--temperature,-t", s.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "nucleus mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "keep k tokens (0 = off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "drop below min-p x max prob (0 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", s.repetition_penalty, "HF CTRL penalty (1 = off)")->capture_default_str();
  cmd->add_option("--max-new-tokens", s.max_new_tokens)->capture_default_str();
  cmd->add_option("--stop", s.stop_strings, "stop string (repeatable)");
  cmd->add_flag("--ignore-eos", s.ignore_eos, "do not stop at the model's EOS ids (benchmarks; vLLM's ignore_eos)");
  cmd->add_option("--seed,-s", s.seed)->capture_default_str();
  cmd->add_option("--device,-d", a->device, "auto | cpu | cuda[:i]")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "auto | float32 | bfloat16")->capture_default_str();
  cmd->add_option("--max-batch-rows", a->engine.max_batch_rows, "sequences decoded together")->capture_default_str();
  cmd->add_option("--max-model-len", a->engine.max_model_len,
                  "window for prompt + completion (0 = the model's max_position_embeddings)")
      ->capture_default_str();
  cmd->add_option(
         "--max-kv-tokens", a->engine.max_kv_tokens,
         "KV pool size in tokens; rows are preempted and recomputed when it runs dry (0 = every row's longest)")
      ->capture_default_str();
  cmd->add_option("--kv-block-size", a->engine.kv_block_size, "positions per KV pool block")->capture_default_str();
  cmd->add_option("--max-memory", a->max_memory,
                  "KV cache + logits budget, e.g. 16GiB (default: 90% of available memory)");
  cmd->add_option("--threads", a->threads, "CPU threads (0 = LibTorch default)")->capture_default_str();
  cmd->add_flag("--json", a->json, "one JSON object per completion (text, token_ids, logprobs, ...)");
  cmd->callback([a] { exit_code() = run_generate(*a); });
}

}  // namespace r1kit::cli
