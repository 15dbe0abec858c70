// run_eval (see eval.h): per model, one engine call over all prompts x n, then the scores.
#include "pipelines/eval.h"

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "pipelines/prompt_data.h"
#include "pipelines/scored_groups.h"
#include "policy/pretrained.h"
#include "rewards/math_extract.h"
#include "rewards/math_parse.h"
#include "src/atomic_file.h"
#include "src/device.h"
#include "src/distributed.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/thread_pool.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// The key maj@k votes on: the extracted answer in its parsed normal form ("1/2" and
// "\frac{1}{2}" vote together), the raw extracted text when it does not parse, "" when none.
std::string vote_key(const std::string& completion) {
  const auto extracted = rewards::math::extract_answer(completion);
  if (!extracted) return "";
  if (auto node = rewards::math::parse_math(extracted->text)) return rewards::math::to_string(*node);
  return extracted->text;
}

// One model's counts over the prompts: correct samples, completion tokens, maj@k verdicts,
// and each reward's tally (in the scorer's order).
struct EvalCounts {
  double correct = 0, tokens = 0, maj_correct = 0;
  rewards::RewardTally tally;  // per reward: value sums, timeouts, errors, skips

  EvalCounts over_ranks(DistributedContext& dist, const std::string& what) const {
    std::vector<double> v = tally.flat();
    v.insert(v.end(), {correct, tokens, maj_correct});
    v = dist.sum_over_ranks(v, what);
    const size_t at = v.size() - 3;  // the scalars follow the reward tally
    return {v[at], v[at + 1], v[at + 2], rewards::RewardTally::from_flat(v, tally.sum.size())};
  }
};

}  // namespace

bool majority_vote_correct(const std::vector<std::string>& completions, const std::vector<bool>& correct, int64_t k) {
  std::map<std::string, int> votes;
  std::map<std::string, bool> key_correct;
  std::string best;
  const auto n = std::min<int64_t>(k, static_cast<int64_t>(completions.size()));
  for (int64_t s = 0; s < n; ++s) {
    const std::string key = vote_key(completions[s]);
    if (key.empty()) continue;
    key_correct[key] = key_correct[key] || correct[s];
    const int count = ++votes[key];
    if (best.empty() || count > votes[best]) best = key;
  }
  return !best.empty() && key_correct[best];
}

EvalOptions parse_eval_options(const Json& j, const StageSetting& setting) {
  EvalOptions o;
  JsonFields f(j, setting.where);
  f.ignore("name");
  f.ignore("type");
  Json models;
  f.require("models", models);
  read_prompt_options(f, o.prompts);
  read_rewards(f, o.rewards);
  read_completion_stats_options(f, o.stats);
  read_generation_options(f, o.generation, "max_new_tokens");
  f.get("num_samples", o.num_samples);
  f.get("maj_k", o.maj_k);
  f.get("max_prompts", o.max_prompts);
  f.get("log_samples", o.log_samples);
  f.get("seed", o.seed);
  f.get("device", o.device);
  f.finish();
  if (!models.is_array() || models.empty()) f.fail("models", "must be a non-empty list of models");
  std::set<std::string> names;
  for (size_t i = 0; i < models.size(); ++i) {
    const Json& m = models[i];
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string() || !m.contains("model") ||
        !m["model"].is_string()) {
      f.fail("models", "entry " + std::to_string(i) + " must be a stage name or {\"name\": STRING, \"model\": DIR}");
    }
    if (!names.insert(m["name"].get<std::string>()).second) {
      f.fail("models", "'" + m["name"].get<std::string>() + "' is listed twice");
    }
    o.models.push_back({m["name"].get<std::string>(), m["model"].get<std::string>()});
  }
  require_positive(f, "num_samples", o.num_samples);
  require_non_negative(f, "maj_k", o.maj_k);
  require_non_negative(f, "max_prompts", o.max_prompts);
  require_non_negative(f, "log_samples", o.log_samples);
  if (o.generation.sampling.temperature == 0) o.num_samples = o.maj_k = 1;  // greedy: every sample would be the same
  if (o.maj_k == 0) o.maj_k = o.num_samples;
  if (o.maj_k > o.num_samples) f.fail("maj_k", "must be <= num_samples");
  return o;
}

std::vector<StageInput> eval_inputs(const EvalOptions& o) {
  std::vector<StageInput> in = {{"data", o.prompts.data, StageInput::Kind::kFile}};
  for (size_t i = 0; i < o.models.size(); ++i) {
    in.push_back({"models[" + std::to_string(i) + "]", o.models[i].dir, StageInput::Kind::kModelDir});
  }
  return in;
}

StageResult run_eval(const EvalOptions& o, const StageContext& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  const DeviceChoice device = rank_device(o.device);
  // One seeded order, so every model answers the same prompts (all of them unless max_prompts).
  // Over-long prompts are measured (error / drop) with the first model's tokenizer.
  const PromptData data(o.prompts, o.seed, Tokenizer::load(o.models.front().dir));
  const int64_t size = static_cast<int64_t>(data.size());
  const int64_t B = o.max_prompts > 0 ? std::min<int64_t>(o.max_prompts, size) : size;
  const std::vector<const Json*> rows = data.rows(0, B);
  const rewards::Scorer& scorer = *o.rewards.scorer;
  ThreadPool pool(0);
  const int64_t n = o.num_samples;
  std::vector<uint64_t> seeds;
  for (int64_t b = 0; b < B; ++b) seeds.push_back(rollout::prompt_seed(o.seed, b));

  // Data parallel: rank r answers prompts r, r+R, ...; the counts are summed over ranks
  // so every rank computes the same totals; rank 0 writes the files.
  DistributedContext& dist = distributed();
  const std::vector<int64_t> my_index = strided_share(B, dist);
  std::vector<const Json*> my_rows;
  std::vector<uint64_t> my_seeds;
  for (int64_t b : my_index) {
    my_rows.push_back(rows[b]);
    my_seeds.push_back(seeds[b]);
  }
  const fs::path out_dir = fs::path(ctx.run_dir) / ctx.stage_name;
  std::optional<JsonlWriter> samples;
  if (dist.is_main()) {
    fs::create_directories(out_dir);
    samples.emplace((out_dir / "eval_samples.jsonl").string());
  }
  // The difficulty buckets are read (and a row without the field refused) before any model runs.
  const CompletionStats no_completions(o.stats, data);
  Json results = Json::object();
  for (const EvalModel& m : o.models) {
    const Tokenizer tokenizer = Tokenizer::load(m.dir);
    auto model = policy::load_pretrained(m.dir, device);
    model->eval();
    rollout::Engine engine = make_engine(model, tokenizer, o.generation.engine);
    const rollout::SamplingOptions sampling = o.generation.sampling_for(m.dir, ctx.stage_name + ": " + m.name);
    const ScoredGroups g = sample_groups(engine, tokenizer, data, scorer, pool, my_rows, my_seeds, n, sampling);

    // This rank's counts over its prompts; summed over ranks they are the one-rank totals
    // (counts and rewards in multiples of 1/2^k: exact in float64 in any order).
    const std::vector<std::string> reward_names = o.rewards.names();
    EvalCounts mine;
    scorer.tally(g.scored, mine.tally);
    CompletionStats stats = no_completions;
    stats.add(g, scorer);
    std::vector<Json> logged;  // this rank's samples among the first log_samples prompts
    for (int64_t j = 0; j < static_cast<int64_t>(my_rows.size()); ++j) {
      std::vector<std::string> completions;
      std::vector<bool> verdicts;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t i = j * n + s;
        const bool ok = is_correct(g.scored[i], scorer);
        mine.correct += ok;
        mine.tokens += static_cast<double>(g.rollouts.rows[i].completion_ids.size());
        completions.push_back(g.rollouts.rows[i].text);
        verdicts.push_back(ok);
      }
      mine.maj_correct += majority_vote_correct(completions, verdicts, o.maj_k);
      if (my_index[j] < o.log_samples) {
        logged.push_back({{"index", my_index[j]},
                          {"model", m.name},
                          {"prompt", g.prompt_texts[j]},
                          {"completion", g.rollouts.rows[j * n].text},
                          {"answer", my_rows[j]->contains("answer") ? (*my_rows[j])["answer"] : Json()},
                          {"correct", is_correct(g.scored[j * n], scorer)}});
      }
    }
    const EvalCounts all = mine.over_ranks(dist, ctx.stage_name + ": eval counts");
    const CompletionStats all_stats = stats.over_ranks(dist, ctx.stage_name + ": completion stats");
    if (all.tally.skips.front() == static_cast<double>(B * n) && B * n > 0) {
      // Accuracy would read 0.0 for a model that was never judged.
      throw Error(
          fmt::format("{}: {}: reward '{}' (the checker) skipped all {} completions; do the rows of {} have "
                      "the field it checks (e.g. \"answer\")?",
                      ctx.stage_name, m.name, reward_names.front(), B * n, o.prompts.data));
    }
    // Failed rows (timeouts, errors) score 0: past the threshold the accuracy would be the reward's.
    const std::string too_many =
        scorer.too_many_failures(all.tally, static_cast<double>(B * n), o.rewards.max_reward_failure_fraction);
    if (!too_many.empty()) {
      throw Error(fmt::format("{}: {}: {} (max_reward_failure_fraction {:g})", ctx.stage_name, m.name, too_many,
                              o.rewards.max_reward_failure_fraction));
    }
    std::vector<Json> samples_in_order;
    for (const Json& part : dist.all_gather_json(logged, ctx.stage_name + ": eval samples")) {
      for (const Json& row : part) samples_in_order.push_back(row);
    }
    std::sort(samples_in_order.begin(), samples_in_order.end(),
              [](const Json& x, const Json& y) { return x["index"] < y["index"]; });
    for (Json& row : samples_in_order) {
      row.erase("index");
      if (samples) samples->write(row);
    }
    const double correct = all.correct, tokens = all.tokens, maj_correct = all.maj_correct;
    const double total = static_cast<double>(B * n);
    Json r = {{"model", m.dir},
              {"accuracy", correct / total},
              {"mean_completion_tokens", tokens / total},
              {"n", B},
              {"samples_per_prompt", n},
              {"temperature", sampling.temperature},
              {"params", model->num_parameters()},
              {"active_params", model->num_active_parameters()}};
    if (o.maj_k > 1) {
      r["maj_at_k"] = maj_correct / B;
      r["k"] = o.maj_k;
    }
    all_stats.add_to(r);
    for (size_t k = 0; k < reward_names.size(); ++k) {
      r["rewards"][reward_names[k]] = all.tally.sum[k] / total;
      r["reward_failures"][reward_names[k]] = all.tally.timeouts[k] + all.tally.errors[k];
    }
    results[m.name] = r;
    if (dist.is_main()) {
      log::info(
          "{}: {:<16} accuracy {:.3f}  maj@{} {}  mean tokens {:.1f}{}  ({} prompts x {})", ctx.stage_name, m.name,
          correct / total, o.maj_k, o.maj_k > 1 ? fmt::format("{:.3f}", maj_correct / B) : "-", tokens / total,
          r.contains("reflection_share") ? fmt::format("  reflecting {:.3f}", r["reflection_share"].get<double>()) : "",
          B, n);
    }
  }
  if (dist.is_main()) {
    samples->commit();
    const Json report = {{"models", results},
                         {"data", o.prompts.data},
                         {"num_samples", n},
                         {"temperature", o.generation.sampling.temperature}};
    write_file_atomic((out_dir / "eval.json").string(), report.dump(2) + "\n");
  }
  StageResult result;
  result.summary = {{"type", "eval"},
                    {"models", results},
                    {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  return result;
}

namespace {
const StageRegistration kEval({"eval", "held-out pass@1, maj@k and completion length of any number of models",
                               /*writes_model=*/false, /*writes_data=*/false,
                               stage_parser(parse_eval_options, eval_inputs, run_eval)});
}  // namespace

}  // namespace r1kit::pipelines
