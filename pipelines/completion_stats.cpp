// CompletionStats (see completion_stats.h).
#include "pipelines/completion_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "pipelines/prompt_data.h"
#include "pipelines/scored_groups.h"
#include "src/dataset_rows.h"
#include "src/distributed.h"

namespace r1kit::pipelines {

void read_completion_stats_options(JsonFields& f, CompletionStatsOptions& o) {
  f.get("difficulty_field", o.difficulty_field);
  f.get("reflection_patterns", o.reflection_patterns);
  for (const std::string& p : o.reflection_patterns) {
    if (p.empty()) f.fail("reflection_patterns", "an empty pattern would match every completion");
  }
}

bool contains_any(std::string_view text, const std::vector<std::string>& patterns) {
  auto same = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return std::search(text.begin(), text.end(), p.begin(), p.end(), same) != text.end();
  });
}

CompletionStats::CompletionStats(const CompletionStatsOptions& o, const PromptData& data)
    : field_(o.difficulty_field), patterns_(o.reflection_patterns) {
  if (!field_.empty()) values_ = data.field_values(field_);
  buckets_.resize(values_.size());
}

void CompletionStats::add(const ScoredGroups& g, const rewards::Scorer& scorer) {
  for (size_t i = 0; i < g.rollouts.rows.size(); ++i) {
    const rollout::Rollout& row = g.rollouts.rows[i];
    rows_ += 1;
    reflecting_ += !patterns_.empty() && contains_any(row.text, patterns_);
    if (field_.empty()) continue;
    // The row was checked to have the field when the buckets were made.
    const std::string value = field_text(g.prompt_rows[row.prompt_index]->at(field_));
    Bucket& b = buckets_[static_cast<size_t>(std::find(values_.begin(), values_.end(), value) - values_.begin())];
    b.rows += 1;
    b.correct += is_correct(g.scored[i], scorer);
    b.tokens += static_cast<double>(row.completion_ids.size());
  }
}

CompletionStats CompletionStats::over_ranks(DistributedContext& dist, const std::string& what) const {
  // Off: nothing to sum, and no collective on GRPO's per-step path (the options are the same
  // on every rank, so every rank skips it alike).
  if (field_.empty() && patterns_.empty()) return *this;
  std::vector<double> flat = {rows_, reflecting_};
  for (const Bucket& b : buckets_) flat.insert(flat.end(), {b.rows, b.correct, b.tokens});
  flat = dist.sum_over_ranks(flat, what);
  CompletionStats all = *this;
  all.rows_ = flat[0], all.reflecting_ = flat[1];
  for (size_t k = 0; k < buckets_.size(); ++k) {
    all.buckets_[k] = {flat[2 + 3 * k], flat[3 + 3 * k], flat[4 + 3 * k]};
  }
  return all;
}

void CompletionStats::add_metrics(std::map<std::string, double>& metrics) const {
  if (!patterns_.empty()) metrics["completion/reflection_share"] = reflecting_ / std::max(rows_, 1.0);
  for (size_t k = 0; k < values_.size(); ++k) {
    const Bucket& b = buckets_[k];
    if (b.rows == 0) continue;  // no prompt of this bucket this step: a gap, not a zero
    metrics[fmt::format("completion/mean_length/{}={}", field_, values_[k])] = b.tokens / b.rows;
    metrics[fmt::format("accuracy/{}={}", field_, values_[k])] = b.correct / b.rows;
  }
}

void CompletionStats::add_to(Json& eval_entry) const {
  if (!patterns_.empty()) eval_entry["reflection_share"] = reflecting_ / std::max(rows_, 1.0);
  if (field_.empty()) return;
  Json by = Json::array();  // in bucket order (an object would sort "10" before "2")
  for (size_t k = 0; k < values_.size(); ++k) {
    const Bucket& b = buckets_[k];
    if (b.rows == 0) continue;
    by.push_back({{"value", values_[k]},
                  {"completions", static_cast<int64_t>(b.rows)},
                  {"accuracy", b.correct / b.rows},
                  {"mean_completion_tokens", b.tokens / b.rows}});
  }
  eval_entry["by_" + field_] = by;
}

}  // namespace r1kit::pipelines
