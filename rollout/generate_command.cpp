// run_generate_command (see generate_command.h).
#include "rollout/generate_command.h"

#include <ATen/Parallel.h>

#include <cstdio>

#include <fmt/format.h>

#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "rollout/engine.h"
#include "src/error.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::rollout {

int run_generate_command(const GenerateCommandArgs& a) {
  if (a.model.empty()) throw Error("generate: --model DIR is required");
  if (a.prompts.empty()) throw Error("generate: at least one --prompt is required");
  if (a.samples < 1) throw Error("generate: -n must be >= 1");
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const Tokenizer tokenizer = Tokenizer::load(a.model);
  const DeviceChoice device = resolve_device(a.device, a.dtype);
  auto model = policy::load_pretrained(a.model, device);

  SamplingOptions o;
  o.temperature = a.temperature;
  o.top_p = a.top_p;
  o.top_k = a.top_k;
  o.min_p = a.min_p;
  o.repetition_penalty = a.repetition_penalty;
  o.max_new_tokens = a.max_new_tokens;
  o.stop_strings = a.stop;
  o.seed = a.seed;
  validate(o, "generate");

  std::vector<std::vector<int32_t>> prompts;
  for (const auto& text : a.prompts) {
    prompts.push_back(tokenizer.encode(text, /*add_special_tokens=*/true));
    if (prompts.back().empty()) throw Error("generate: a prompt encodes to no tokens");
  }
  EngineOptions eo;
  eo.max_batch_rows = a.max_batch_rows;
  Engine engine(model, eo, [&tokenizer](const std::vector<int32_t>& ids) {
    return tokenizer.decode(ids, /*skip_special_tokens=*/true);
  });
  const Rollouts r = engine.generate(prompts, a.samples, o);

  for (const Rollout& row : r.rows) {
    if (a.json) {
      const Json j = {{"prompt_index", row.prompt_index}, {"sample_index", row.sample_index},
                      {"prompt", a.prompts[row.prompt_index]}, {"text", row.text},
                      {"token_ids", row.completion_ids},     {"logprobs", row.logprobs},
                      {"finish_reason", to_string(row.finish)}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("=== prompt %lld, sample %lld (%zu tokens, %s) ===\n%s%s\n", static_cast<long long>(row.prompt_index),
                  static_cast<long long>(row.sample_index), row.completion_ids.size(), to_string(row.finish).c_str(),
                  a.prompts[row.prompt_index].c_str(), row.text.c_str());
    }
  }
  log::info("generate: {} completions, {} tokens in {:.2f} s ({:.1f} tok/s) on {}; KV cache {} B/token, {:.1f} MiB",
            r.rows.size(), r.generated_tokens, r.seconds, static_cast<double>(r.generated_tokens) / r.seconds,
            to_string(device), r.cache.bytes_per_token, static_cast<double>(r.cache.total_bytes) / (1 << 20));
  return 0;
}

}  // namespace r1kit::rollout
