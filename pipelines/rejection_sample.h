// The `rejection_sample` stage (DeepSeek-R1 sec. 2.3.3): N samples per prompt from a model,
// kept when every reward named in `min_rewards` reaches its threshold (default: the first
// reward, the task's checker, at 1), then filtered: completion length in tokens, identical
// completions of a prompt removed, at most K kept per prompt. Writes an SFT JSONL
// ({"prompt": the rendered prompt, "completion": the sampled text} plus provenance: source
// model, stage, prompt index, sample index, rewards, and the original row's fields) to
// RUN/data/<stage>.jsonl, which a later sft/distill stage reads with {"from": "<stage>"}.
// Not here: R1's DeepSeek-V3-as-judge filter and its removal of mixed-language chains
// (use the `language` reward with a threshold for the latter).
#pragma once
#include <map>
#include <string>

#include "pipelines/options.h"
#include "pipelines/stage.h"

namespace r1kit::pipelines {

struct RejectionSampleOptions {
  std::string model;  // HF model directory
  PromptOptions prompts;
  RewardSpec rewards;
  std::map<std::string, double> min_rewards;  // reward name -> threshold; default {first reward: 1}
  int64_t num_samples = 8;                    // N per prompt
  int64_t max_per_prompt = 0;                 // K kept per prompt at most; 0 = all that pass
  bool dedupe = true;                         // drop a completion identical to one kept for the prompt
  int64_t min_completion_tokens = 0;
  int64_t max_completion_tokens = 0;  // 0 = no bound (the engine's max_new_tokens still cuts)
  bool drop_truncated = true;         // a completion cut by max_new_tokens never finished
  int64_t max_prompts = 0;            // 0 = every row once; at most the dataset's size
  GenerationOptions generation;       // temperature 0 = greedy (num_samples is then 1)
  int64_t prompts_per_batch = 64;     // prompts generated together
  uint64_t seed = 0;
  std::string device = "auto";
};

// min_rewards names must be rewards of the stage; empty becomes {first reward: 1}.
RejectionSampleOptions parse_rejection_sample_options(const Json& j, const StageSetting& setting);
std::vector<StageInput> rejection_sample_inputs(const RejectionSampleOptions& o);
// StageResult::data_path is the written JSONL; the summary counts samples drawn, passed (every
// threshold reached) and kept (after the filters); acceptance_rate = kept / drawn.
StageResult run_rejection_sample(const RejectionSampleOptions& options, const StageContext& context);

}  // namespace r1kit::pipelines
