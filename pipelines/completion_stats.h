// What DeepSeek-R1-Zero's figures plot besides accuracy: completion length per difficulty
// (a dataset field: harder questions should get longer answers) and the share of completions
// that reflect (contain a marker such as "wait"). grpo logs them per step, eval per model.
//
// Recipe keys (grpo, eval):
//   difficulty_field     a prompt-row field ("difficulty"); its values are the buckets; every
//                        row must have it. Off when empty.
//   reflection_patterns  substrings, matched case-insensitively; a completion containing any
//                        counts as reflecting. Off when empty.
// Metrics: completion/mean_length/<field>=<value>, accuracy/<field>=<value> per bucket and
// completion/reflection_share; eval.json per model: "by_<field>": [{value, completions (prompts
// x samples), accuracy, mean_completion_tokens}, ...] in bucket order, and "reflection_share".
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "src/config.h"

namespace r1kit {
class DistributedContext;
namespace rewards {
class Scorer;
}
}  // namespace r1kit

namespace r1kit::pipelines {

class PromptData;
struct ScoredGroups;

struct CompletionStatsOptions {
  std::string difficulty_field;
  std::vector<std::string> reflection_patterns;
};
void read_completion_stats_options(JsonFields& f, CompletionStatsOptions& o);

// Whether `text` contains one of `patterns`, ASCII letters compared case-insensitively.
bool contains_any(std::string_view text, const std::vector<std::string>& patterns);

class CompletionStats {
 public:
  CompletionStats() = default;  // off: adds and reports nothing
  // The buckets are every value the field takes in `data` (the same on every rank and step).
  CompletionStats(const CompletionStatsOptions& o, const PromptData& data);

  // Every completion of `g` (correct = the scorer's checker is full, as in accuracy).
  void add(const ScoredGroups& g, const rewards::Scorer& scorer);
  // The sums over all ranks (every rank must call it).
  CompletionStats over_ranks(DistributedContext& dist, const std::string& what) const;

  void add_metrics(std::map<std::string, double>& metrics) const;
  // Merged into an eval.json model entry.
  void add_to(Json& eval_entry) const;

 private:
  // Per bucket: completions, correct ones, completion tokens.
  struct Bucket {
    double rows = 0, correct = 0, tokens = 0;
  };
  std::string field_;
  std::vector<std::string> patterns_;
  std::vector<std::string> values_;  // the buckets' field values, in order
  std::vector<Bucket> buckets_;
  double rows_ = 0, reflecting_ = 0;
};

}  // namespace r1kit::pipelines
