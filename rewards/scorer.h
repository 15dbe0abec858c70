// Scorer: the recipe's rewards, combined with weights: value = sum_i w_i * v_i over the
// rewards that did not skip; parts[name] = v_i; why = "math=1 (...); format=0 (...)".
// A row that every reward skips is skipped.
//
// Spec (recipe JSON): [{"name": "math", "weight": 1.0, "timeout_s": 10, ...options},
// {"name": "format", "weight": 1.0}]; each entry's options are parsed with JsonFields, so
// an unknown key is an error naming it. From the command line: "math", "math:1,format:0.5",
// the JSON list itself, or a path to a .json file holding it.
// Batched scoring runs rows in parallel on a ThreadPool, one reward after the other.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rewards/reward.h"

namespace r1kit::rewards {

struct ScorerEntry {
  std::string name;
  double weight = 1.0;
  std::unique_ptr<Reward> reward;
};

class Scorer {
 public:
  Scorer() = default;
  Scorer(Scorer&&) = default;
  Scorer& operator=(Scorer&&) = default;

  // `where` names the origin in errors ("recipe.json: stages[1].rewards").
  static Scorer from_json(const Json& spec, const std::string& where);
  static Scorer from_spec(const std::string& spec);

  void add(std::string name, double weight, std::unique_ptr<Reward> reward);
  RewardResult score(const RewardInput& in) const;
  std::vector<RewardResult> score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const;
  const std::vector<ScorerEntry>& entries() const { return entries_; }

  // Per reward (in entries() order): on how many of `results` (this scorer's) it timed out.
  std::vector<double> timeouts_per_reward(const std::vector<RewardResult>& results) const;
  // Per reward (in entries() order): how many of `results` it skipped (no value: the row
  // lacks what it checks, e.g. math without an "answer").
  std::vector<double> skips_per_reward(const std::vector<RewardResult>& results) const;
  // "" unless some reward timed out on more than max_fraction of `rows` completions; then one
  // line naming the first such reward: "reward 'x' timed out on 5 of 8 completions (> 10%)".
  std::string too_many_timeouts(const std::vector<double>& timeouts, double rows, double max_fraction) const;

 private:
  RewardResult combine(const std::vector<const RewardResult*>& parts) const;
  std::vector<ScorerEntry> entries_;
};

}  // namespace r1kit::rewards
