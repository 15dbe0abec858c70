// Sampling and scoring G completions per prompt: the first half of a GRPO step, and all of
// what the eval and rejection_sample stages do with a model. Rows of a group are contiguous
// (row b*G + g). The engine's text drops the EOS that ended a row (it is not part of what the
// model "said") but keeps special tokens such as <think> (the format reward reads them).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "rewards/scorer.h"
#include "rollout/engine.h"
#include "src/config.h"

namespace r1kit {
class Tokenizer;
class ThreadPool;
class DistributedContext;
}  // namespace r1kit

namespace r1kit::pipelines {

class PromptData;

struct ScoredGroups {
  rollout::Rollouts rollouts;                 // N = B*G rows; prompt_index indexes prompt_texts
  std::vector<rewards::RewardResult> scored;  // [N]
  std::vector<std::string> prompt_texts;      // [B] rendered prompts
  std::vector<const Json*> prompt_rows;       // [B] the dataset rows (answer, tests, ...)
  double seconds_rollout = 0, seconds_reward = 0;

  int64_t size() const { return static_cast<int64_t>(prompt_texts.size()); }
  at::Tensor rewards_tensor() const;  // [N] fp32, a skipped row counts as 0
  // Appends the groups of `other` marked in `keep`, until `limit` groups are held.
  void append(const ScoredGroups& other, const std::vector<bool>& keep, int64_t limit);
};

// An engine over `model` whose Rollout::text is the tokenizer's decode without the final EOS.
rollout::Engine make_engine(std::shared_ptr<policy::CausalLM> model, const Tokenizer& tokenizer,
                            const rollout::EngineOptions& options);

// Renders each row with `data`'s template, generates G completions per prompt with the
// given per-prompt seeds, and scores every completion.
ScoredGroups sample_groups(rollout::Engine& engine, const Tokenizer& tokenizer, const PromptData& data,
                           const rewards::Scorer& scorer, ThreadPool& pool, const std::vector<const Json*>& rows,
                           const std::vector<uint64_t>& seeds, int64_t G, const rollout::SamplingOptions& sampling);

// This rank's share of `count` prompts when they need not divide evenly over the ranks:
// r, r + R, r + 2R, ... (eval and rejection_sample; GRPO needs equal contiguous shards).
std::vector<int64_t> strided_share(int64_t count, const DistributedContext& dist);

// A completion is correct when the scorer's first reward (the task's checker) is full (>= 1).
bool is_correct(const rewards::RewardResult& result, const rewards::Scorer& scorer);

}  // namespace r1kit::pipelines
