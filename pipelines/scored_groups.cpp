// ScoredGroups, make_engine, sample_groups (see scored_groups.h).
#include "pipelines/scored_groups.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>

#include "pipelines/prompt_data.h"
#include "policy/causal_lm.h"
#include "src/distributed.h"
#include "src/thread_pool.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

at::Tensor ScoredGroups::rewards_tensor() const {
  std::vector<float> v;
  v.reserve(scored.size());
  for (const auto& r : scored) v.push_back(static_cast<float>(r.value.value_or(0.0)));
  return at::tensor(v);
}

void ScoredGroups::append(const ScoredGroups& other, const std::vector<bool>& keep, int64_t limit) {
  const int64_t G = other.rollouts.group_size;
  rollouts.group_size = G;
  for (int64_t b = 0; b < other.size() && size() < limit; ++b) {
    if (!keep[b]) continue;
    for (int64_t g = 0; g < G; ++g) {
      rollout::Rollout row = other.rollouts.rows[b * G + g];
      row.prompt_index = size();
      rollouts.rows.push_back(std::move(row));
      scored.push_back(other.scored[b * G + g]);
    }
    prompt_texts.push_back(other.prompt_texts[b]);
    prompt_rows.push_back(other.prompt_rows[b]);
  }
}

rollout::Engine make_engine(std::shared_ptr<policy::CausalLM> model, const Tokenizer& tokenizer,
                            const rollout::EngineOptions& options) {
  const std::vector<int64_t> eos_ids = model->config().eos_token_ids;
  return rollout::Engine(std::move(model), options, [eos_ids, &tokenizer](const std::vector<int32_t>& ids) {
    std::vector<int32_t> kept;
    for (int32_t id : ids) {
      if (std::find(eos_ids.begin(), eos_ids.end(), id) == eos_ids.end()) kept.push_back(id);
    }
    return tokenizer.decode(kept, /*skip_special_tokens=*/false);
  });
}

ScoredGroups sample_groups(rollout::Engine& engine, const Tokenizer& tokenizer, const PromptData& data,
                           const rewards::Scorer& scorer, ThreadPool& pool, const std::vector<const Json*>& rows,
                           const std::vector<uint64_t>& seeds, int64_t G, const rollout::SamplingOptions& sampling) {
  const auto t0 = std::chrono::steady_clock::now();
  ScoredGroups out;
  std::vector<std::vector<int32_t>> prompts;
  for (const Json* row : rows) {
    out.prompt_texts.push_back(data.render(*row, tokenizer));
    out.prompt_rows.push_back(row);
    prompts.push_back(data.encode(*row, tokenizer));
  }
  out.rollouts = engine.generate(prompts, G, sampling, seeds);
  out.seconds_rollout = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  const int64_t N = static_cast<int64_t>(out.rollouts.rows.size());
  std::vector<rewards::RewardInput> inputs(N);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t b = out.rollouts.rows[i].prompt_index;
    inputs[i].prompt = out.prompt_texts[b];
    inputs[i].completion = out.rollouts.rows[i].text;
    inputs[i].fields = out.prompt_rows[b];
  }
  out.scored = scorer.score_batch(inputs, &pool);
  out.seconds_reward = seconds_since(t1);
  return out;
}

std::vector<int64_t> strided_share(int64_t count, const DistributedContext& dist) {
  std::vector<int64_t> mine;
  for (int64_t i = dist.rank(); i < count; i += dist.world_size()) mine.push_back(i);
  return mine;
}

bool is_correct(const rewards::RewardResult& result, const rewards::Scorer& scorer) {
  if (scorer.entries().empty()) return false;
  auto it = result.parts.find(scorer.entries()[0].name);
  return (it != result.parts.end() ? it->second : result.value.value_or(0)) >= 1.0;
}

}  // namespace r1kit::pipelines
