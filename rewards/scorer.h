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
#include <string_view>
#include <vector>

#include "rewards/reward.h"

namespace r1kit::rewards {

struct ScorerEntry {
  std::string name;
  double weight = 1.0;
  std::unique_ptr<Reward> reward;
};

// Per reward of a Scorer (entries() order) over many rows: the sum of its values (a skipped
// row adds nothing), and the rows it timed out on or reported an error for (both scored 0
// without judging) or skipped.
struct RewardTally {
  std::vector<double> sum, timeouts, errors, skips;

  // The vectors end to end, and back: one reduction over ranks for all of them.
  std::vector<double> flat() const;
  static RewardTally from_flat(const std::vector<double>& values, size_t rewards);
};

// Failures (timeouts, errors) are warned on stderr as they happen, rate-limited per reward:
// the first few with their "why" and the completion's start, then at every power of ten.
struct FailureWarnings;

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

  // Adds `results` (this scorer's, row by row in order) to `tally`.
  void tally(const std::vector<RewardResult>& results, RewardTally& tally) const;
  // "" unless some reward failed (timed out or errored) on more than max_fraction of `rows`
  // completions; then one line naming the first such reward: "reward 'x' failed on 5 of 8
  // completions (> 10%): 3 timeouts, 2 errors".
  std::string too_many_failures(const RewardTally& tally, double rows, double max_fraction) const;

 private:
  RewardResult combine(const std::vector<const RewardResult*>& parts, std::string_view completion) const;
  std::vector<ScorerEntry> entries_;
  std::shared_ptr<FailureWarnings> warnings_;
};

}  // namespace r1kit::rewards
