// run_rejection_sample (see rejection_sample.h): batches of prompts -> N samples each ->
// scores -> thresholds -> filters -> JSONL, written atomically at the end.
#include "pipelines/rejection_sample.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "pipelines/prompt_data.h"
#include "pipelines/scored_groups.h"
#include "policy/pretrained.h"
#include "src/distributed.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/thread_pool.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {

RejectionSampleOptions parse_rejection_sample_options(const Json& j, const StageSetting& setting) {
  RejectionSampleOptions o;
  JsonFields f(j, setting.where);
  f.ignore("name");
  f.ignore("type");
  f.require("model", o.model);
  read_prompt_options(f, o.prompts);
  read_rewards(f, o.rewards);
  read_generation_options(f, o.generation, "max_new_tokens");
  Json min_rewards;
  f.get("min_rewards", min_rewards);
  f.get("num_samples", o.num_samples);
  f.get("max_per_prompt", o.max_per_prompt);
  f.get("dedupe", o.dedupe);
  f.get("min_completion_tokens", o.min_completion_tokens);
  f.get("max_completion_tokens", o.max_completion_tokens);
  f.get("drop_truncated", o.drop_truncated);
  f.get("max_prompts", o.max_prompts);
  f.get("prompts_per_batch", o.prompts_per_batch);
  f.get("seed", o.seed);
  f.get("device", o.device);
  f.finish();
  const std::vector<std::string> names = o.rewards.names();
  if (!min_rewards.is_null()) {
    if (!min_rewards.is_object()) f.fail("min_rewards", "must be an object {reward name: threshold}");
    for (const auto& [name, v] : min_rewards.items()) {
      if (!v.is_number()) f.fail("min_rewards", "threshold of '" + name + "' must be a number");
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        f.fail("min_rewards", "'" + name + "' is not one of the stage's rewards");
      }
      o.min_rewards[name] = v.get<double>();
    }
  }
  if (o.min_rewards.empty()) o.min_rewards[names.front()] = 1.0;  // the task's checker, full marks
  require_positive(f, "num_samples", o.num_samples);
  require_positive(f, "prompts_per_batch", o.prompts_per_batch);
  require_non_negative(f, "max_per_prompt", o.max_per_prompt);
  require_non_negative(f, "min_completion_tokens", o.min_completion_tokens);
  require_non_negative(f, "max_completion_tokens", o.max_completion_tokens);
  require_non_negative(f, "max_prompts", o.max_prompts);
  if (o.generation.sampling.temperature == 0) o.num_samples = 1;  // greedy: every sample would be the same
  return o;
}

std::vector<StageInput> rejection_sample_inputs(const RejectionSampleOptions& o) {
  return {{"model", o.model, StageInput::Kind::kModelDir}, {"data", o.prompts.data, StageInput::Kind::kFile}};
}

namespace {

// Samples drawn, passing every threshold, kept after the filters, and prompts with at least
// one kept sample.
struct SampleCounts {
  int64_t drawn = 0, passed = 0, kept = 0, prompts_with_one = 0;

  SampleCounts over_ranks(DistributedContext& dist, const std::string& what) const {
    const std::vector<double> all =
        dist.sum_over_ranks({static_cast<double>(drawn), static_cast<double>(passed), static_cast<double>(kept),
                             static_cast<double>(prompts_with_one)},
                            what);
    return {static_cast<int64_t>(all[0]), static_cast<int64_t>(all[1]), static_cast<int64_t>(all[2]),
            static_cast<int64_t>(all[3])};
  }
  SampleCounts& operator+=(const SampleCounts& o) {
    drawn += o.drawn, passed += o.passed, kept += o.kept, prompts_with_one += o.prompts_with_one;
    return *this;
  }
};

}  // namespace

StageResult run_rejection_sample(const RejectionSampleOptions& o, const StageContext& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer tokenizer = Tokenizer::load(o.model);
  auto model = policy::load_pretrained(o.model, rank_device(o.device));
  model->eval();
  const PromptData data(o.prompts, o.seed, tokenizer);
  const rewards::Scorer& scorer = *o.rewards.scorer;
  ThreadPool pool(0);
  rollout::Engine engine = make_engine(model, tokenizer, o.generation.engine);
  const rollout::SamplingOptions sampling = o.generation.sampling_for(o.model, ctx.stage_name);

  const int64_t size = static_cast<int64_t>(data.size());
  // Each prompt at most once (a second epoch would repeat prompts under new seeds).
  const int64_t total = o.max_prompts > 0 ? std::min(o.max_prompts, size) : size;
  const int64_t N = o.num_samples;
  const std::string out_path = stage_data_path(ctx.run_dir, ctx.stage_name);
  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());  // every rank writes a part
  // Data parallel: in each batch rank r samples prompts r, r+R, ...; only the counts go
  // through the rendezvous store (it is meant for small objects). Each rank writes its kept
  // records to a part file next to the output, and rank 0 merges the parts in prompt order.
  DistributedContext& dist = distributed();
  const bool parted = dist.world_size() > 1;
  const std::string part_path = out_path + ".rank" + std::to_string(dist.rank());
  JsonlWriter out(parted ? part_path : out_path);
  SampleCounts total_counts;  // over all ranks
  for (int64_t start = 0; start < total; start += o.prompts_per_batch) {
    const int64_t B = std::min(o.prompts_per_batch, total - start);
    const std::vector<const Json*> batch_rows = data.rows(start, B);
    std::vector<const Json*> rows;
    std::vector<uint64_t> seeds;
    std::vector<int64_t> index;
    for (int64_t b : strided_share(B, dist)) {
      rows.push_back(batch_rows[b]);
      seeds.push_back(rollout::prompt_seed(o.seed, start + b));
      index.push_back(start + b);
    }
    const ScoredGroups g = sample_groups(engine, tokenizer, data, scorer, pool, rows, seeds, N, sampling);
    SampleCounts mine;  // this rank's
    std::vector<Json> records;
    for (int64_t b = 0; b < static_cast<int64_t>(rows.size()); ++b) {
      std::set<std::string> seen;
      int64_t kept_here = 0;
      for (int64_t s = 0; s < N; ++s) {
        const int64_t i = b * N + s;
        const rollout::Rollout& row = g.rollouts.rows[i];
        mine.drawn += 1;
        bool ok = true;
        for (const auto& [name, t] : o.min_rewards) {
          auto it = g.scored[i].parts.find(name);
          ok = ok && it != g.scored[i].parts.end() && it->second >= t;
        }
        if (!ok) continue;
        mine.passed += 1;
        const auto tokens = static_cast<int64_t>(row.completion_ids.size());
        if (o.drop_truncated && row.finish == rollout::FinishReason::kLength) continue;
        if (tokens < o.min_completion_tokens || (o.max_completion_tokens > 0 && tokens > o.max_completion_tokens))
          continue;
        if (o.dedupe && !seen.insert(row.text).second) continue;
        if (o.max_per_prompt > 0 && kept_here >= o.max_per_prompt) continue;
        ++kept_here;
        Json parts = Json::object();
        for (const auto& [name, v] : g.scored[i].parts) parts[name] = v;
        mine.kept += 1;
        Json record = {{"prompt", g.prompt_texts[b]}, {"completion", row.text}};
        if (data.conversational()) {
          // TRL's conversational prompt-completion row, which the sft / distill stages render
          // with the student's own chat template.
          const Json& source = *rows[b];
          record = {{"prompt", source.at(o.prompts.prompt_field)},
                    {"completion", Json::array({Json{{"role", "assistant"}, {"content", row.text}}})}};
          for (const char* key : {"tools", "chat_template_kwargs"}) {
            if (source.contains(key)) record[key] = source[key];
          }
        }
        record.update(Json{{"source_model", o.model},
                           {"stage", ctx.stage_name},
                           {"prompt_index", index[b]},
                           {"sample_index", s},
                           {"rewards", parts},
                           {"source", *rows[b]}});
        records.push_back(std::move(record));
      }
      mine.prompts_with_one += kept_here > 0;
    }
    for (const Json& r : records) out.write(r);  // this rank's, in prompt order
    total_counts += mine.over_ranks(dist, ctx.stage_name + ": counts");
    if (dist.is_main()) {
      log::info("{}: {}/{} prompts, {} of {} samples kept", ctx.stage_name, std::min(start + B, total), total,
                total_counts.kept, total_counts.drawn);
    }
  }
  out.commit();
  if (parted) {
    dist.barrier(ctx.stage_name + ": parts written");
    if (dist.is_main()) {
      std::vector<Json> records;
      for (int r = 0; r < dist.world_size(); ++r) {
        const std::string part = out_path + ".rank" + std::to_string(r);
        for (Json& row : read_jsonl(part)) records.push_back(std::move(row));
      }
      std::sort(records.begin(), records.end(), [](const Json& x, const Json& y) {
        return std::make_pair(x["prompt_index"].get<int64_t>(), x["sample_index"].get<int64_t>()) <
               std::make_pair(y["prompt_index"].get<int64_t>(), y["sample_index"].get<int64_t>());
      });
      write_jsonl_atomic(out_path, records);
      for (int r = 0; r < dist.world_size(); ++r) std::filesystem::remove(out_path + ".rank" + std::to_string(r));
    }
  }
  // The next stage may read the dataset on every rank: nobody leaves before it is in place.
  dist.barrier(ctx.stage_name + ": data written");
  StageResult result;
  result.data_path = out_path;
  result.summary = {
      {"type", "rejection_sample"},
      {"data", out_path},
      {"prompts", total},
      {"samples", total_counts.drawn},
      {"passed", total_counts.passed},
      {"kept", total_counts.kept},
      {"prompts_with_a_kept_sample", total_counts.prompts_with_one},
      {"acceptance_rate", total_counts.drawn > 0 ? static_cast<double>(total_counts.kept) / total_counts.drawn : 0.0},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  return result;
}

namespace {
const StageRegistration kRejectionSample(
    {"rejection_sample", "N samples per prompt, kept by reward thresholds and filters, as SFT JSONL",
     /*writes_model=*/false, /*writes_data=*/true,
     stage_parser(parse_rejection_sample_options, rejection_sample_inputs, run_rejection_sample)});
}  // namespace

}  // namespace r1kit::pipelines
