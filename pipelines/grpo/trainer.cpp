// run_grpo (see trainer.h). One step = one rollout batch of prompts_per_step x
// num_generations completions and num_iterations optimizer steps on it.
// Data parallel (src/distributed.h, world size W): each rank rolls out and scores B/W of the
// step's prompts (the same seeded global order and per-prompt seeds as on one rank; groups
// never split), every batch statistic (batch-scaled advantages, dynamic sampling's fill, the
// loss normalisers, expert load, metrics) is taken over all ranks, and gradients are summed
// over ranks, so W ranks compute the one-rank update. Rank 0 alone writes metrics, samples,
// checkpoints and the model; a replica check every kReplicaCheckSteps steps catches ranks
// whose weights drifted apart.
#include "pipelines/grpo/trainer.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <optional>

#include "pipelines/prompt_data.h"
#include "pipelines/scored_groups.h"
#include "pipelines/training.h"
#include "policy/balancing.h"
#include "policy/logprobs.h"
#include "policy/lora.h"
#include "policy/pretrained.h"
#include "rewards/scorer.h"
#include "rollout/engine.h"
#include "src/distributed.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/metrics.h"
#include "src/thread_pool.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines::grpo {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Ranks compare their weights this often (and at the end, and after a resume).
constexpr int64_t kReplicaCheckSteps = 10;

// The policy's view of a rollout batch: each row is prompt + completion, right-padded, with
// inputs = tokens[:-1] and targets = tokens[1:]; the mask marks the completion targets.
struct TrainBatch {
  at::Tensor inputs;         // [N, T] int64
  at::Tensor targets;        // [N, T] int64
  at::Tensor mask;           // [N, T] fp32
  at::Tensor logprobs_roll;  // [N, T] fp32 the sampler's logprobs at the completion targets
};

// The longest row's input length (at least 1).
int64_t batch_length(const rollout::Rollouts& r) {
  int64_t T = 1;
  for (const auto& row : r.rows) {
    T = std::max<int64_t>(T, static_cast<int64_t>(row.prompt_ids.size() + row.completion_ids.size()) - 1);
  }
  return T;
}

// Rows padded to T >= batch_length(r): the longest row of ALL ranks (padded_length_over_ranks).
TrainBatch make_batch(const rollout::Rollouts& r, bool mask_truncated, const at::Device& device, int64_t T) {
  const int64_t N = static_cast<int64_t>(r.rows.size());
  TrainBatch b;
  b.inputs = at::zeros({N, T}, at::kLong);
  b.targets = at::zeros({N, T}, at::kLong);
  b.mask = at::zeros({N, T}, at::kFloat);
  b.logprobs_roll = at::zeros({N, T}, at::kFloat);
  auto in = b.inputs.accessor<int64_t, 2>();
  auto tg = b.targets.accessor<int64_t, 2>();
  auto mk = b.mask.accessor<float, 2>();
  auto lp = b.logprobs_roll.accessor<float, 2>();
  for (int64_t i = 0; i < N; ++i) {
    const auto& row = r.rows[i];
    std::vector<int32_t> seq(row.prompt_ids);
    seq.insert(seq.end(), row.completion_ids.begin(), row.completion_ids.end());
    const int64_t P = static_cast<int64_t>(row.prompt_ids.size());
    const bool drop = mask_truncated && row.finish == rollout::FinishReason::kLength;
    for (int64_t t = 0; t + 1 < static_cast<int64_t>(seq.size()); ++t) {
      in[i][t] = seq[t];
      tg[i][t] = seq[t + 1];
      if (t + 1 >= P) {  // target t+1 is completion token t+1-P
        mk[i][t] = drop ? 0.f : 1.f;
        lp[i][t] = row.logprobs[t + 1 - P];
      }
    }
  }
  b.inputs = b.inputs.to(device);
  b.targets = b.targets.to(device);
  b.mask = b.mask.to(device);
  b.logprobs_roll = b.logprobs_roll.to(device);
  return b;
}

// Logprobs of the batch's targets under `model` at the sampling temperature, no grad.
at::Tensor score_batch(policy::CausalLM& model, const TrainBatch& b, int64_t micro, double temperature) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < b.inputs.size(0); s += micro) {
    const int64_t n = std::min(micro, b.inputs.size(0) - s);
    const at::Tensor h = model.forward_hidden(b.inputs.narrow(0, s, n));
    parts.push_back(
        policy::token_logprobs(h, model.lm_head_weight(), b.targets.narrow(0, s, n), {temperature}).logprobs);
  }
  return at::cat(parts, 0);
}

// DAPO's dynamic-sampling filter: keep the groups whose rewards are not all equal.
std::vector<bool> spread_groups(const Advantages& a) {
  std::vector<bool> keep;
  const at::Tensor zero = a.zero_std_group.cpu();
  for (int64_t b = 0; b < zero.size(0); ++b) keep.push_back(!zero[b].item<bool>());
  return keep;
}

// This rank's share of each batch of B prompts: [begin, begin + count) of the global order.
struct Shard {
  int64_t begin = 0, count = 0;
};

// (The parse step checked that B is a multiple of the world size: groups never split.)
Shard prompt_shard(int64_t B, const DistributedContext& dist) {
  const int64_t W = dist.world_size();
  return {dist.rank() * (B / W), B / W};
}

// Every rank's `local` values at their global `rows` of a [total] vector, on every rank: an
// all-reduce over zeros, exact (x + 0 = x), so statistics over it equal the one-rank ones.
at::Tensor gather_rows(DistributedContext& dist, const at::Tensor& local, const std::vector<int64_t>& rows,
                       int64_t total, const std::string& what) {
  at::Tensor all = at::zeros({total}, at::kFloat);  // [total]
  if (!rows.empty()) all.index_copy_(0, at::tensor(rows, at::kLong), local.to(at::kFloat));
  dist.all_reduce_sum(all, what);
  return all;
}

// Everything a GRPO stage holds for its whole run.
struct GrpoRun {
  const GrpoOptions& o;
  const StageContext& ctx;
  DistributedContext& dist;
  DeviceChoice device;
  Tokenizer tokenizer;
  std::shared_ptr<policy::CausalLM> policy;
  std::shared_ptr<policy::CausalLM> reference;  // only when the KL term is on
  PromptData data;
  const rewards::Scorer& scorer;
  rollout::SamplingOptions sampling;  // the recipe's, with the model's generation_config.json defaults
  ThreadPool pool{0};
  Shard shard;                           // this rank's prompts of each batch
  std::optional<JsonlAppender> samples;  // RUN/<stage>/samples.jsonl, rank 0
  CompletionStats no_completions;        // a step's stats before its first completion
};

// A step's counters, summed (or maximised) over ranks in one collective each.
struct RolloutCounts {
  double rows = 0, correct = 0, length = 0, truncated = 0, generated_tokens = 0;
  rewards::RewardTally tally;  // per reward: value sums, timeouts, errors, skips
  double length_max = 0, seconds_rollout_max = 0;
  CompletionStats stats;  // per difficulty, reflection

  // Adds this rank's scored groups (accuracy: the first reward, the task's checker, is full).
  void add(const ScoredGroups& g, const rewards::Scorer& scorer) {
    scorer.tally(g.scored, tally);
    stats.add(g, scorer);
    for (const auto& scored : g.scored) correct += is_correct(scored, scorer);
    for (const auto& row : g.rollouts.rows) {
      rows += 1;
      length += static_cast<double>(row.completion_ids.size());
      length_max = std::max<double>(length_max, static_cast<double>(row.completion_ids.size()));
      truncated += row.finish == rollout::FinishReason::kLength;
    }
  }

  RolloutCounts over_ranks(DistributedContext& dist) const {
    std::vector<double> sums = tally.flat();
    sums.insert(sums.end(), {rows, correct, length, truncated, generated_tokens});
    sums = dist.sum_over_ranks(sums, "rollout counts");
    const std::vector<double> maxes = dist.max_over_ranks({length_max, seconds_rollout_max}, "rollout maxima");
    RolloutCounts all;
    const size_t at = sums.size() - 5;  // the scalars follow the reward tally
    all.rows = sums[at], all.correct = sums[at + 1], all.length = sums[at + 2];
    all.truncated = sums[at + 3], all.generated_tokens = sums[at + 4];
    all.tally = rewards::RewardTally::from_flat(sums, tally.sum.size());
    all.length_max = maxes[0], all.seconds_rollout_max = maxes[1];
    all.stats = stats.over_ranks(dist, "completion stats");
    return all;
  }
};

// What one step sampled: the groups trained on (this rank's share), and for the metrics
// everything drawn (the dynamic-sampling filter would flatter them).
struct StepRollout {
  ScoredGroups groups;                    // this rank's share of what is trained on
  std::vector<int64_t> trained_rows;      // global row (one-rank order) of each row of `groups`
  RolloutCounts counts;                   // this rank's share of everything drawn
  std::vector<at::Tensor> drawn_rewards;  // per round: all ranks' rewards [B*G]
  std::vector<Json> sample_rows;          // this rank's rows among the first log_completions
  int64_t trained = 0, drawn = 0, rounds = 0, zero_std_drawn = 0;  // groups, over all ranks
  double seconds_reward = 0;
};

// Steps 1-4: prompts (the next B of the seeded stream), G completions each from the policy
// being trained, rewards. With dynamic sampling (DAPO) the groups whose rewards are all equal
// are dropped and more prompts drawn, up to a cap. Each rank samples its shard; the decisions
// are taken over all ranks' rewards.
StepRollout rollout_step(GrpoRun& run, rollout::Engine& engine, TrainerState& state, int64_t step) {
  const GrpoOptions& o = run.o;
  const Shard shard = run.shard;
  const int64_t B = o.prompts_per_step, G = o.num_generations;
  constexpr int64_t kAll = std::numeric_limits<int64_t>::max();
  StepRollout out;
  out.counts.stats = run.no_completions;
  double seconds_rollout = 0;
  while (out.rounds == 0 || (o.dynamic_sampling && out.trained < B && out.rounds < o.dynamic_sampling_max_rounds)) {
    const std::vector<const Json*> rows = run.data.rows(state.data_position + shard.begin, shard.count);
    state.data_position += B;
    std::vector<uint64_t> seeds;
    for (int64_t b = 0; b < shard.count; ++b) {
      // Round r's prompts get seeds B*r.. so that each round samples afresh; a prompt's seed
      // is its global index, whatever the world size.
      seeds.push_back(
          rollout::prompt_seed(o.seed * 1000003ULL + static_cast<uint64_t>(step), out.drawn + shard.begin + b));
    }
    const ScoredGroups round =
        sample_groups(engine, run.tokenizer, run.data, run.scorer, run.pool, rows, seeds, G, run.sampling);
    seconds_rollout += round.seconds_rollout;
    out.seconds_reward += round.seconds_reward;
    out.counts.generated_tokens += static_cast<double>(round.rollouts.generated_tokens);
    std::vector<int64_t> round_rows(shard.count * G);
    std::iota(round_rows.begin(), round_rows.end(), shard.begin * G);
    const at::Tensor round_rewards =
        gather_rows(run.dist, round.rewards_tensor(), round_rows, B * G, "rewards");  // [B*G]
    out.drawn_rewards.push_back(round_rewards);
    const Advantages check = group_advantages(round_rewards, G, o.advantages);
    out.zero_std_drawn += check.num_zero_std;
    const std::vector<bool> spread = o.dynamic_sampling ? spread_groups(check) : std::vector<bool>(B, true);
    // The batch is filled with the first kept groups in global order; a rank keeps its own.
    std::vector<bool> keep(shard.count, false);
    for (int64_t b = 0; b < B && out.trained < B; ++b) {
      if (!spread[b]) continue;
      if (b >= shard.begin && b < shard.begin + shard.count) {
        keep[b - shard.begin] = true;
        for (int64_t g = 0; g < G; ++g) out.trained_rows.push_back(out.trained * G + g);
      }
      ++out.trained;
    }
    for (int64_t i = 0; i < shard.count * G; ++i) {
      const int64_t global = (out.drawn + shard.begin) * G + i;
      if (global >= o.log_completions) break;
      const rollout::Rollout& row = round.rollouts.rows[i];
      out.sample_rows.push_back({{"i", global},
                                 {"prompt", round.prompt_texts[row.prompt_index]},
                                 {"completion", row.text},
                                 {"reward", round.scored[i].value.value_or(0.0)},
                                 {"why", round.scored[i].why}});
    }
    out.counts.add(round, run.scorer);
    out.groups.append(round, keep, kAll);
    out.drawn += B;
    ++out.rounds;
  }
  out.counts.seconds_rollout_max = seconds_rollout;
  return out;
}

// Loss diagnostics of the last pass, summed over this rank's tokens.
struct TrainStats {
  double grad_norm = 0, kl = 0, clip_low = 0, clip_high = 0, entropy = 0, tokens = 0;
  double seconds_reference = 0, seconds_train = 0;
  policy::ExpertLoadReport load;  // per MoE layer, over all ranks
};

// Steps 5-7: old-policy and reference logprobs, num_iterations optimizer steps over the
// batch (micro-batched), then aux-loss-free balancing from the step's expert load.
TrainStats train_step(GrpoRun& run, Training& training, const StepRollout& r, const Advantages& adv, int64_t N,
                      int64_t step) {
  const GrpoOptions& o = run.o;
  policy::CausalLM& policy = *run.policy;
  TrainStats st;
  const auto t_ref0 = Clock::now();
  const int64_t N_local = static_cast<int64_t>(r.groups.rollouts.rows.size());
  const int64_t T = padded_length_over_ranks(batch_length(r.groups.rollouts));
  const TrainBatch batch = make_batch(r.groups.rollouts, o.mask_truncated_completions, run.device.device, T);
  const int64_t micro = o.per_device_train_batch_size;
  const double temperature = run.sampling.temperature;
  // The sampler's logprobs equal the policy's at the same temperature unless the
  // distribution was truncated; only then is a separate old-policy forward needed.
  const rollout::SamplingOptions& s = run.sampling;
  const bool truncated_sampling = s.top_k > 0 || s.top_p < 1 || s.min_p > 0 || s.repetition_penalty != 1;
  const at::Tensor logprobs_old =
      truncated_sampling && N_local > 0 ? score_batch(policy, batch, micro, temperature) : batch.logprobs_roll;
  at::Tensor logprobs_ref;  // [N, T]
  if (run.reference && N_local > 0) logprobs_ref = score_batch(*run.reference, batch, micro, temperature);
  if (!run.reference && o.loss.beta > 0 && N_local > 0) {
    // LoRA: the reference is the frozen base, i.e. the policy with its adapters off.
    policy::AdaptersDisabled base(policy);
    logprobs_ref = score_batch(policy, batch, micro, temperature);
  }
  st.seconds_reference = seconds_since(t_ref0);

  const auto t_train0 = Clock::now();
  policy.train();
  // The normalisers are the global batch's: summed over ranks, the micro-batch losses are
  // the one-rank loss (bnpo: equal when each rank's rows are a multiple of the micro-batch).
  const double batch_tokens = run.dist.sum_over_ranks(batch.mask.sum().item<double>(), "batch tokens");
  const int64_t num_micro = static_cast<int64_t>(
      run.dist.sum_over_ranks(static_cast<double>((N_local + micro - 1) / micro), "micro-batches"));
  const at::Tensor advantages =  // [N_local]
      N_local > 0 ? adv.values.index_select(0, at::tensor(r.trained_rows, at::kLong)).to(run.device.device)
                  : at::Tensor();
  for (int64_t it = 0; it < o.num_iterations && N > 0; ++it) {
    training.optimizer().zero_grad();
    for (int64_t s0 = 0; s0 < N_local; s0 += micro) {
      const int64_t n = std::min(micro, N_local - s0);
      const at::Tensor hidden = policy.forward_hidden(batch.inputs.narrow(0, s0, n));  // [n, T, D]
      const policy::TokenLogprobs lp =
          policy::token_logprobs(hidden, policy.lm_head_weight(), batch.targets.narrow(0, s0, n), {temperature});
      LossInputs in;
      in.logprobs_new = lp.logprobs;
      in.logprobs_old = logprobs_old.narrow(0, s0, n);
      if (logprobs_ref.defined()) in.logprobs_ref = logprobs_ref.narrow(0, s0, n);
      in.entropy = lp.entropy;
      in.advantages = advantages.narrow(0, s0, n);
      in.mask = batch.mask.narrow(0, s0, n);
      in.batch_sequences = N;
      in.batch_tokens = batch_tokens;
      in.num_minibatches = num_micro;
      const LossOutput out = grpo_loss(in, o.loss);
      // MoE sequence-wise balance loss (0 unless seq_aux_loss_alpha > 0), weighted by rows.
      training.backward(out.loss + policy.aux_loss() * (static_cast<double>(n) / N));
      if (it == o.num_iterations - 1) {
        st.kl += out.kl_mean * out.tokens;
        st.clip_low += out.clip_low_fraction * out.tokens;
        st.clip_high += out.clip_high_fraction * out.tokens;
        st.entropy += out.entropy_mean * out.tokens;
        st.tokens += out.tokens;
      }
    }
    st.grad_norm = training.step_optimizer();
  }
  // Aux-loss-free balancing from this step's expert load (DeepSeek-V3), over all ranks.
  st.load = policy::update_router_biases(policy, policy.config().bias_update_speed,
                                         [&](at::Tensor& l) { run.dist.all_reduce_sum(l, "expert load"); });
  if (run.reference && o.ref_model_sync_steps > 0 && (step + 1) % o.ref_model_sync_steps == 0) {
    const auto whole = training.whole_weights();
    policy::copy_weights(policy, *run.reference);  // R1-Zero: reference reset every 400 steps
  }
  st.seconds_train = seconds_since(t_train0);
  return st;
}

// Step 8: the metrics row (rollout counts over everything drawn, loss diagnostics summed
// over ranks, times of rank 0), and the step's first log_completions samples.
std::map<std::string, double> step_metrics(GrpoRun& run, const StepRollout& r, const RolloutCounts& all,
                                           const TrainStats& st, double lr, double seconds_step) {
  const std::vector<double> diag =
      run.dist.sum_over_ranks({st.kl, st.clip_low, st.clip_high, st.entropy, st.tokens}, "loss diagnostics");
  const double tokens = diag[4];
  const double N = std::max(1.0, all.rows);
  const at::Tensor rewards = at::cat(r.drawn_rewards);  // [rounds * B * G]
  std::map<std::string, double> m;
  m["reward/mean"] = rewards.numel() > 0 ? rewards.mean().item<double>() : 0;
  m["reward/std"] = rewards.numel() > 1 ? rewards.std().item<double>() : 0;
  const auto& entries = run.scorer.entries();
  for (size_t k = 0; k < entries.size(); ++k) {
    m["reward/" + entries[k].name] = all.tally.sum[k] / N;
    m["rewards/" + entries[k].name + "/timeouts"] = all.tally.timeouts[k];
    m["rewards/" + entries[k].name + "/errors"] = all.tally.errors[k];
    m["rewards/" + entries[k].name + "/skipped"] = all.tally.skips[k];
  }
  m["accuracy"] = all.correct / N;
  m["completion/mean_length"] = all.length / N;
  m["completion/max_length"] = all.length_max;
  m["completion/frac_truncated"] = all.truncated / N;
  all.stats.add_metrics(m);
  m["frac_zero_std_groups"] = static_cast<double>(r.zero_std_drawn) / r.drawn;
  m["trained_groups"] = static_cast<double>(r.trained);
  if (run.o.dynamic_sampling) m["dynamic_sampling/rounds"] = static_cast<double>(r.rounds);
  m["clip/low_fraction"] = tokens > 0 ? diag[1] / tokens : 0;
  m["clip/high_fraction"] = tokens > 0 ? diag[2] / tokens : 0;
  m["kl"] = tokens > 0 ? diag[0] / tokens : 0;
  m["entropy"] = tokens > 0 ? diag[3] / tokens : 0;
  m["grad_norm"] = st.grad_norm;
  m["learning_rate"] = lr;
  m["tokens_per_second"] = all.generated_tokens / std::max(all.seconds_rollout_max, 1e-9);
  m["time/rollout"] = r.counts.seconds_rollout_max;
  m["time/reward"] = r.seconds_reward;
  m["time/reference"] = st.seconds_reference;
  m["time/train"] = st.seconds_train;
  m[kSecondsPerStepKey] = seconds_step;
  // Expert load imbalance per MoE layer (max/mean; 1 = balanced), and the worst layer.
  for (size_t l = 0; l < st.load.max_over_mean.size(); ++l) {
    m[fmt::format("moe/load_max_over_mean/layer_{}", st.load.layers[l])] = st.load.max_over_mean[l];
  }
  if (!st.load.max_over_mean.empty()) {
    m["moe/load_max_over_mean"] = *std::max_element(st.load.max_over_mean.begin(), st.load.max_over_mean.end());
  }
  return m;
}

// A reward that skipped every completion, or failed (timed out or errored) and scored 0
// without judging: warned each step it happens (each failure was also warned as it happened,
// rate-limited, by the Scorer); and a step where one reward failed on more than
// max_reward_failure_fraction of the completions stops the stage before it trains on those zeros.
void check_reward_failures(const GrpoRun& run, const RolloutCounts& all, int64_t step) {
  const auto& entries = run.scorer.entries();
  for (size_t k = 0; k < entries.size() && run.dist.is_main(); ++k) {
    // A reward that skipped every completion adds nothing (math on rows without "answer").
    if (all.rows > 0 && all.tally.skips[k] == all.rows) {
      log::warn(
          "{} step {}: reward '{}' skipped all {:g} completions (do the rows have the field it checks, "
          "e.g. \"answer\"?)",
          run.ctx.stage_name, step, entries[k].name, all.rows);
    }
    if (all.tally.timeouts[k] + all.tally.errors[k] > 0) {
      log::warn("{} step {}: reward '{}' failed on {:g} of {:g} completions ({:g} timeouts, {:g} errors; scored 0)",
                run.ctx.stage_name, step, entries[k].name, all.tally.timeouts[k] + all.tally.errors[k], all.rows,
                all.tally.timeouts[k], all.tally.errors[k]);
    }
  }
  const std::string too_many =
      run.scorer.too_many_failures(all.tally, all.rows, run.o.rewards.max_reward_failure_fraction);
  if (!too_many.empty()) {
    throw Error(fmt::format("{}: step {}: {}; stopped before training on it (max_reward_failure_fraction {:g})",
                            run.ctx.stage_name, step, too_many, run.o.rewards.max_reward_failure_fraction));
  }
}

// The first log_completions rows drawn (one-rank order), whichever rank sampled them, into
// RUN/<stage>/samples.jsonl.
void log_samples(GrpoRun& run, const StepRollout& r, int64_t step) {
  if (run.o.log_completions == 0) return;
  std::vector<Json> all;
  for (const Json& part : run.dist.all_gather_json(r.sample_rows, "samples")) {
    for (const Json& row : part) all.push_back(row);
  }
  std::sort(all.begin(), all.end(), [](const Json& a, const Json& b) { return a["i"] < b["i"]; });
  if (!run.samples) return;
  for (const Json& row : all) {
    run.samples->write({{"stage", run.ctx.stage_name},
                        {"step", step},
                        {"prompt", row["prompt"]},
                        {"completion", row["completion"]},
                        {"reward", row["reward"]},
                        {"why", row["why"]}});
  }
}

// A few completions per step in RUN/<stage>/samples.jsonl (rank 0); on resume the rows of
// replayed steps are dropped, as for the metrics.
std::optional<JsonlAppender> open_samples(const StageContext& ctx, int64_t resumed_step) {
  if (!distributed().is_main()) return std::nullopt;
  const std::string path = (fs::path(ctx.run_dir) / ctx.stage_name / "samples.jsonl").string();
  fs::create_directories(fs::path(path).parent_path());
  if (ctx.resume) drop_rows_after_step(path, resumed_step);
  return std::optional<JsonlAppender>(std::in_place, path);
}

}  // namespace

StageResult run_grpo(const GrpoOptions& o, const StageContext& ctx) {
  const auto t_stage = Clock::now();
  DistributedContext& dist = distributed();               // one rank of one when not launched
  const DeviceChoice device = training_device(o.device);  // fp32; cuda -> cuda:<LOCAL_RANK>
  Tokenizer tokenizer = Tokenizer::load(o.model);
  PromptData data(o.prompts, o.seed, tokenizer);
  GrpoRun run{o,
              ctx,
              dist,
              device,
              std::move(tokenizer),
              policy::load_pretrained(o.model, device),
              nullptr,
              std::move(data),
              *o.rewards.scorer,
              o.generation.sampling_for(o.model, ctx.stage_name)};
  if (!(run.sampling.temperature > 0)) {  // GRPO needs spread within a group; checked for the recipe at parse
    throw Error(ctx.stage_name + ": " + o.model + "/generation_config.json sets temperature " +
                std::to_string(run.sampling.temperature) + "; GRPO samples: set temperature > 0 in the recipe");
  }
  prepare_lora(*run.policy, o.lora, o.seed, ctx.stage_name);
  // The KL reference: a copy of the initial policy, or with LoRA the same weights with the
  // adapters switched off (no second model in memory).
  if (o.loss.beta > 0 && !policy::has_lora(*run.policy)) run.reference = policy::copy_model(*run.policy);
  run.shard = prompt_shard(o.prompts_per_step, dist);
  run.no_completions = CompletionStats(o.stats, run.data);  // reads the difficulty buckets once
  // From here the policy (and the reference) compute in bf16 under mixed precision: the
  // engine samples from that copy.
  Training training(*run.policy, o.optimizer, o.memory, o.checkpoints, o.max_steps, ctx, run.reference.get());
  run.samples = open_samples(ctx, training.state.step);
  // Completion text for rewards keeps <think> etc. and drops the final EOS (scored_groups.h).
  rollout::Engine engine = make_engine(run.policy, run.tokenizer, o.generation.engine);
  const int64_t G = o.num_generations;

  for (int64_t step = training.state.step; step < o.max_steps; ++step) {
    const auto t_step = Clock::now();
    // 1-4. Rollout and rewards.
    run.policy->eval();
    const StepRollout r = [&] {
      const auto whole = training.whole_weights();  // ZeRO-3: the engine samples from whole layers
      return rollout_step(run, engine, training.state, step);
    }();
    const RolloutCounts drawn = r.counts.over_ranks(dist);  // everything sampled, all ranks
    check_reward_failures(run, drawn, step + 1);
    if (r.trained == 0 && dist.is_main()) {
      // Every drawn group was uniform: no learning signal at all. Skip the update, log the step.
      log::warn("{} step {}: all {} drawn groups had equal rewards; no update", ctx.stage_name, step + 1, r.drawn);
    }
    // Group-relative advantages over all ranks' trained rewards.
    const int64_t N = r.trained * G;  // B*G over all ranks, or fewer when every draw was uniform
    const at::Tensor rewards =
        gather_rows(dist, r.groups.rewards_tensor(), r.trained_rows, N, "trained rewards");  // [N]
    const Advantages adv = N > 0 ? group_advantages(rewards, G, o.advantages) : Advantages{};
    // 5-7. Train.
    const double lr = training.begin_step(step);
    const TrainStats st = train_step(run, training, r, adv, N, step);
    // 8. Log and checkpoint.
    const std::map<std::string, double> m = step_metrics(run, r, drawn, st, lr, seconds_since(t_step));
    log_samples(run, r, step + 1);
    if (dist.is_main()) {
      log::info("{} {}", ctx.stage_name,
                format_progress(step + 1, o.max_steps, m,
                                {"reward/mean", "accuracy", "completion/mean_length", "completion/reflection_share",
                                 "kl", "frac_zero_std_groups", kSecondsPerStepKey}));
    }
    training.end_step(step, m, run.tokenizer, kReplicaCheckSteps);
  }

  StageResult result;
  result.model_dir = training.save_final(run.tokenizer, o.lora.merge_adapter);
  result.summary = {{"type", "grpo"},
                    {"params", run.policy->num_parameters()},
                    {"active_params", run.policy->num_active_parameters()},
                    {"steps", training.state.step},
                    {"seconds", seconds_since(t_stage)}};
  return result;
}

namespace {
const StageRegistration kGrpo({"grpo", "GRPO and its variants (DAPO, Dr. GRPO, GSPO) with rule-checked rewards",
                               /*writes_model=*/true, /*writes_data=*/false,
                               stage_parser(parse_grpo_options, grpo_inputs, run_grpo)});
}  // namespace

}  // namespace r1kit::pipelines::grpo
