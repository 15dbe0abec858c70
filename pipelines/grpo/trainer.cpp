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
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <optional>

#include "pipelines/checkpoint.h"
#include "pipelines/grpo/advantages.h"
#include "pipelines/grpo/loss.h"
#include "pipelines/prompt_data.h"
#include "pipelines/schedule.h"
#include "pipelines/scored_groups.h"
#include "policy/balancing.h"
#include "policy/logprobs.h"
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
  at::Tensor inputs;         // [N, L] int64
  at::Tensor targets;        // [N, L] int64
  at::Tensor mask;           // [N, L] fp32
  at::Tensor logprobs_roll;  // [N, L] fp32 the sampler's logprobs at the completion targets
};

// The longest row's input length (at least 1).
int64_t batch_length(const rollout::Rollouts& r) {
  int64_t L = 1;
  for (const auto& row : r.rows) {
    L = std::max<int64_t>(L, static_cast<int64_t>(row.prompt_ids.size() + row.completion_ids.size()) - 1);
  }
  return L;
}

// Rows padded to L >= batch_length(r). Data parallel ranks pad to the longest row of ALL
// ranks: padding tokens pass through the MoE router too, and the expert load (the bias rule's
// input) must count the same tokens as on one rank.
TrainBatch make_batch(const rollout::Rollouts& r, bool mask_truncated, const at::Device& device, int64_t L) {
  const int64_t N = static_cast<int64_t>(r.rows.size());
  TrainBatch b;
  b.inputs = at::zeros({N, L}, at::kLong);
  b.targets = at::zeros({N, L}, at::kLong);
  b.mask = at::zeros({N, L}, at::kFloat);
  b.logprobs_roll = at::zeros({N, L}, at::kFloat);
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
    parts.push_back(policy::token_logprobs(h, model.lm_head_weight(), b.targets.narrow(0, s, n), {temperature}).logprobs);
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


// Reward-part, accuracy and length sums of a batch of scored groups, as {"sum": {...},
// "max": {...}}: the form in which ranks' shares combine (combine_over_ranks).
Json rollout_sums(const ScoredGroups& g, const rewards::Scorer& scorer) {
  Json sum = {{"rows", g.rollouts.rows.size()}, {"correct", 0.0}, {"length", 0.0}, {"truncated", 0.0}};
  Json parts = Json::object();
  double len_max = 0;
  for (const auto& s : g.scored) {
    for (const auto& [name, v] : s.parts) parts[name] = parts.value(name, 0.0) + v;
    // Accuracy: the share of completions whose first reward (the task's checker) is full.
    if (!scorer.entries().empty()) {
      auto it = s.parts.find(scorer.entries()[0].name);
      sum["correct"] = sum["correct"].get<double>() + ((it != s.parts.end() ? it->second : s.value.value_or(0)) >= 1.0);
    }
  }
  for (const auto& row : g.rollouts.rows) {
    sum["length"] = sum["length"].get<double>() + row.completion_ids.size();
    len_max = std::max<double>(len_max, row.completion_ids.size());
    sum["truncated"] = sum["truncated"].get<double>() + (row.finish == rollout::FinishReason::kLength);
  }
  sum["parts"] = parts;
  return {{"sum", sum}, {"max", {{"length", len_max}}}};
}

// Adds the "sum" fields (numbers, and objects of numbers) and takes the largest "max" fields
// of every rank's `local`, in rank order (the same result on every rank).
Json combine_over_ranks(DistributedContext& dist, const Json& local, const std::string& what) {
  const std::vector<Json> all = dist.all_gather_json(local, what);
  Json out = all[0];
  for (size_t r = 1; r < all.size(); ++r) {
    for (auto& [k, v] : all[r]["sum"].items()) {
      if (v.is_object()) {
        for (auto& [k2, v2] : v.items()) out["sum"][k][k2] = out["sum"][k].value(k2, 0.0) + v2.get<double>();
      } else {
        out["sum"][k] = out["sum"].value(k, 0.0) + v.get<double>();
      }
    }
    for (auto& [k, v] : all[r]["max"].items()) out["max"][k] = std::max(out["max"].value(k, 0.0), v.get<double>());
  }
  return out;
}

// Reward, accuracy and length statistics from all ranks' sums and the drawn rewards [N].
std::map<std::string, double> rollout_metrics(const Json& totals, const at::Tensor& r, const rewards::Scorer& scorer) {
  const Json& sum = totals["sum"];
  const double N = std::max(1.0, sum["rows"].get<double>());
  std::map<std::string, double> m;
  m["reward/mean"] = r.numel() > 0 ? r.mean().item<double>() : 0;
  m["reward/std"] = r.numel() > 1 ? r.std().item<double>() : 0;
  for (const auto& [name, v] : sum["parts"].items()) m["reward/" + name] = v.get<double>() / N;
  if (!scorer.entries().empty()) m["accuracy"] = sum["correct"].get<double>() / N;
  m["completion/mean_length"] = sum["length"].get<double>() / N;
  m["completion/max_length"] = totals["max"]["length"].get<double>();
  m["completion/frac_truncated"] = sum["truncated"].get<double>() / N;
  return m;
}

// This rank's share of each batch of B prompts: [begin, begin + count) of the global order.
struct Shard {
  int64_t begin = 0, count = 0;
};

Shard prompt_shard(int64_t B, const DistributedContext& dist, const std::string& stage) {
  const int64_t W = dist.world_size();
  if (B % W != 0) {
    throw Error(fmt::format("{}.prompts_per_step: {} prompts do not split evenly over {} ranks (groups never split; "
                            "use a multiple of the world size)", stage, B, W));
  }
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

}  // namespace

StageResult run_grpo(const GrpoOptions& o, const StageContext& ctx) {
  const auto t_stage = Clock::now();
  DistributedContext& dist = distributed();  // one rank of one when not launched
  const DeviceChoice device = rank_device(o.device);  // cuda -> cuda:<LOCAL_RANK>
  const Tokenizer tokenizer = Tokenizer::load(o.model);
  auto policy = policy::load_pretrained(o.model, device);
  const PromptData data(o.data, o.prompt_field, o.prompt_template, o.seed);
  const rewards::Scorer scorer = rewards::Scorer::from_json(o.rewards, ctx.stage_name + ".rewards");
  ThreadPool pool(0);
  std::shared_ptr<policy::CausalLM> reference;  // only when the KL term is on
  if (o.beta > 0) reference = policy::copy_model(*policy);
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(o.learning_rate)
                                                          .betas({o.adam_beta1, o.adam_beta2})
                                                          .weight_decay(o.weight_decay));
  const std::string ckpt_root = (fs::path(ctx.run_dir) / "checkpoints" / ctx.stage_name).string();
  TrainerState state;
  if (ctx.resume) {
    if (const auto chosen = agreed_latest_checkpoint(ckpt_root, dist)) {
      state = load_checkpoint(*chosen, *policy, optimizer, reference.get());
      if (dist.is_main()) log::info("{}: resumed from {} (step {})", ctx.stage_name, *chosen, state.step);
      check_replicas_equal(dist, replica_tensors(*policy), ctx.stage_name + " after resume");
    }
  }
  // Each stage logs into RUN/<stage>/ (metrics.jsonl + TensorBoard events); rank 0 only.
  MetricsLogger metrics((fs::path(ctx.run_dir) / ctx.stage_name).string(), /*enabled=*/dist.is_main());
  if (ctx.resume) metrics.truncate_after(state.step);  // replayed steps are not logged twice
  // A few completions per step in RUN/<stage>/samples.jsonl; on resume the rows of replayed
  // steps are dropped, as for the metrics.
  std::optional<JsonlAppender> samples;
  if (dist.is_main()) {
    const std::string samples_path = (fs::path(ctx.run_dir) / ctx.stage_name / "samples.jsonl").string();
    fs::create_directories(fs::path(samples_path).parent_path());
    if (ctx.resume) drop_rows_after_step(samples_path, state.step);
    samples.emplace(samples_path);
  }

  rollout::EngineOptions engine_options;
  engine_options.max_batch_rows = o.generation_batch_rows;
  // Completion text for rewards keeps <think> etc. and drops the final EOS (scored_groups.h).
  rollout::Engine engine = make_engine(policy, tokenizer, engine_options);
  rollout::SamplingOptions sampling;
  sampling.temperature = o.temperature;
  sampling.top_p = o.top_p;
  sampling.top_k = o.top_k;
  sampling.min_p = o.min_p;
  sampling.repetition_penalty = o.repetition_penalty;
  sampling.max_new_tokens = o.max_completion_length;
  sampling.stop_strings = o.stop_strings;
  // The sampler's logprobs equal the policy's at the same temperature unless the
  // distribution was truncated; only then is a separate old-policy forward needed.
  const bool truncated_sampling = o.top_k > 0 || o.top_p < 1 || o.min_p > 0 || o.repetition_penalty != 1;

  LossOptions loss_options;
  loss_options.loss_type = o.loss_type;
  loss_options.importance_sampling_level = o.importance_sampling_level;
  loss_options.epsilon = o.epsilon;
  loss_options.epsilon_high = o.epsilon_high;
  loss_options.beta = o.beta;
  loss_options.entropy_coef = o.entropy_coef;
  loss_options.max_completion_length = o.max_completion_length;
  const int64_t B = o.prompts_per_step, G = o.num_generations;
  const Shard shard = prompt_shard(B, dist, ctx.stage_name);  // this rank's prompts of each batch

  for (int64_t step = state.step; step < o.max_steps; ++step) {
    const auto t_step = Clock::now();
    // 1-4. Prompts (the next B of the seeded stream), G completions each from the policy
    // being trained, rewards, group-relative advantages. With dynamic sampling (DAPO) the
    // groups whose rewards are all equal are dropped and more prompts drawn, up to a cap.
    // Each rank samples its shard; the decisions are taken over all ranks' rewards.
    policy->eval();
    ScoredGroups groups;     // this rank's share of what is trained on
    ScoredGroups drawn_all;  // this rank's share of everything sampled this step (the metrics:
                           // unbiased by the filter)
    std::vector<int64_t> trained_rows;      // global row (one-rank order) of each row of `groups`
    std::vector<at::Tensor> drawn_rewards;  // per round: all ranks' rewards [B*G]
    std::vector<Json> sample_rows;          // this rank's rows among the first log_completions
    int64_t trained = 0, drawn = 0, rounds = 0, zero_std_drawn = 0;  // groups, over all ranks
    double t_rollout = 0, t_reward = 0, generated_tokens = 0;
    while (rounds == 0 || (o.dynamic_sampling && trained < B && rounds < o.dynamic_sampling_max_rounds)) {
      const std::vector<const Json*> rows = data.rows(state.data_position + shard.begin, shard.count);
      state.data_position += B;
      std::vector<uint64_t> seeds;
      for (int64_t b = 0; b < shard.count; ++b) {
        // Round r's prompts get seeds B*r.. so that each round samples afresh; a prompt's seed
        // is its global index, whatever the world size.
        seeds.push_back(rollout::prompt_seed(o.seed * 1000003ULL + static_cast<uint64_t>(step), drawn + shard.begin + b));
      }
      const ScoredGroups round = sample_groups(engine, tokenizer, data, scorer, pool, rows, seeds, G, sampling);
      t_rollout += round.seconds_rollout;
      t_reward += round.seconds_reward;
      generated_tokens += round.rollouts.generated_tokens;
      std::vector<int64_t> round_rows(shard.count * G);
      std::iota(round_rows.begin(), round_rows.end(), shard.begin * G);
      const at::Tensor round_rewards = gather_rows(dist, round.rewards_tensor(), round_rows, B * G, "rewards");  // [B*G]
      drawn_rewards.push_back(round_rewards);
      const Advantages check = group_advantages(round_rewards, G, {o.scale_rewards});
      zero_std_drawn += check.num_zero_std;
      const std::vector<bool> spread = o.dynamic_sampling ? spread_groups(check) : std::vector<bool>(B, true);
      // The batch is filled with the first kept groups in global order; a rank keeps its own.
      std::vector<bool> keep(shard.count, false);
      for (int64_t b = 0; b < B && trained < B; ++b) {
        if (!spread[b]) continue;
        if (b >= shard.begin && b < shard.begin + shard.count) {
          keep[b - shard.begin] = true;
          for (int64_t g = 0; g < G; ++g) trained_rows.push_back(trained * G + g);
        }
        ++trained;
      }
      for (int64_t i = 0; i < shard.count * G; ++i) {
        const int64_t global = (drawn + shard.begin) * G + i;
        if (global >= o.log_completions) break;
        const rollout::Rollout& row = round.rollouts.rows[i];
        sample_rows.push_back({{"i", global}, {"prompt", round.prompt_texts[row.prompt_index]}, {"completion", row.text},
                               {"reward", round.scored[i].value.value_or(0.0)}, {"why", round.scored[i].why}});
      }
      constexpr int64_t kAll = std::numeric_limits<int64_t>::max();
      drawn_all.append(round, std::vector<bool>(shard.count, true), kAll);
      groups.append(round, keep, kAll);
      drawn += B;
      ++rounds;
    }
    if (trained == 0 && dist.is_main()) {
      // Every drawn group was uniform: no learning signal at all. Skip the update, log the step.
      log::warn("{} step {}: all {} drawn groups had equal rewards; no update", ctx.stage_name, step + 1, drawn);
    }
    const rollout::Rollouts& rollouts = groups.rollouts;
    const int64_t N = trained * G;  // B*G over all ranks, or fewer when every draw was uniform
    const int64_t N_local = static_cast<int64_t>(rollouts.rows.size());
    const at::Tensor reward_t = gather_rows(dist, groups.rewards_tensor(), trained_rows, N, "trained rewards");  // [N]
    const Advantages adv = N > 0 ? group_advantages(reward_t, G, {o.scale_rewards}) : Advantages{};

    // 5. Old-policy and reference logprobs.
    const auto t_ref0 = Clock::now();
    const int64_t L = static_cast<int64_t>(dist.max_over_ranks(static_cast<double>(batch_length(rollouts)), "batch length"));
    const TrainBatch batch = make_batch(rollouts, o.mask_truncated_completions, device.device, L);
    const int64_t micro = o.per_device_train_batch_size;
    const at::Tensor logprobs_old =
        truncated_sampling && N_local > 0 ? score_batch(*policy, batch, micro, o.temperature) : batch.logprobs_roll;
    at::Tensor logprobs_ref;
    if (reference && N_local > 0) logprobs_ref = score_batch(*reference, batch, micro, o.temperature);
    const double t_ref = seconds_since(t_ref0);

    // 6. num_iterations optimizer steps over the batch, micro-batched.
    const auto t_train0 = Clock::now();
    policy->train();
    const double lr = learning_rate_at({o.learning_rate, o.lr_scheduler_type, o.warmup_steps, o.max_steps}, step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    // The normalisers are the global batch's: summed over ranks, the micro-batch losses are
    // the one-rank loss (bnpo: equal when each rank's rows are a multiple of the micro-batch).
    const double batch_tokens = dist.sum_over_ranks(batch.mask.sum().item<double>(), "batch tokens");
    const int64_t num_micro =
        static_cast<int64_t>(dist.sum_over_ranks(static_cast<double>((N_local + micro - 1) / micro), "micro-batches"));
    const at::Tensor advantages =
        N_local > 0 ? adv.values.index_select(0, at::tensor(trained_rows, at::kLong)).to(device.device) : at::Tensor();
    double grad_norm = 0, kl = 0, clip_low = 0, clip_high = 0, entropy = 0, tokens = 0;
    for (int64_t it = 0; it < o.num_iterations && N > 0; ++it) {
      optimizer.zero_grad();
      for (int64_t s = 0; s < N_local; s += micro) {
        const int64_t n = std::min(micro, N_local - s);
        const at::Tensor hidden = policy->forward_hidden(batch.inputs.narrow(0, s, n));
        const policy::TokenLogprobs lp = policy::token_logprobs(hidden, policy->lm_head_weight(),
                                                                batch.targets.narrow(0, s, n), {o.temperature});
        LossInputs in;
        in.logprobs_new = lp.logprobs;
        in.logprobs_old = logprobs_old.narrow(0, s, n);
        if (logprobs_ref.defined()) in.logprobs_ref = logprobs_ref.narrow(0, s, n);
        in.entropy = lp.entropy;
        in.advantages = advantages.narrow(0, s, n);
        in.mask = batch.mask.narrow(0, s, n);
        in.batch_sequences = N;
        in.batch_tokens = batch_tokens;
        in.num_minibatches = num_micro;
        const LossOutput out = grpo_loss(in, loss_options);
        // MoE sequence-wise balance loss (0 unless seq_aux_loss_alpha > 0), weighted by rows.
        (out.loss + policy->aux_loss() * (static_cast<double>(n) / N)).backward();
        if (it == o.num_iterations - 1) {
          kl += out.kl_mean * out.tokens;
          clip_low += out.clip_low_fraction * out.tokens;
          clip_high += out.clip_high_fraction * out.tokens;
          entropy += out.entropy_mean * out.tokens;
          tokens += out.tokens;
        }
      }
      all_reduce_gradients(dist, policy->parameters());
      grad_norm = torch::nn::utils::clip_grad_norm_(policy->parameters(), o.max_grad_norm);
      optimizer.step();
    }
    // 7. Aux-loss-free balancing from this step's expert load (DeepSeek-V3), over all ranks.
    const policy::ExpertLoadReport load = policy::update_router_biases(
        *policy, policy->config().bias_update_speed, [&](at::Tensor& l) { dist.all_reduce_sum(l, "expert load"); });
    if (reference && o.ref_model_sync_steps > 0 && (step + 1) % o.ref_model_sync_steps == 0) {
      policy::copy_weights(*policy, *reference);  // R1-Zero: reference reset every 400 steps
    }
    const double t_train = seconds_since(t_train0);
    state.step = step + 1;

    // 8. Metrics (over everything drawn: the dynamic-sampling filter would bias them),
    // samples, checkpoint. Sums come from every rank; times are rank 0's.
    at::Tensor diag = at::tensor({kl, clip_low, clip_high, entropy, tokens}, at::kDouble);
    dist.all_reduce_sum(diag, "loss diagnostics");
    kl = diag[0].item<double>(), clip_low = diag[1].item<double>(), clip_high = diag[2].item<double>();
    entropy = diag[3].item<double>(), tokens = diag[4].item<double>();
    Json local = rollout_sums(drawn_all, scorer);
    local["sum"]["generated_tokens"] = generated_tokens;
    local["max"]["t_rollout"] = t_rollout;
    const Json totals = combine_over_ranks(dist, local, "rollout metrics");
    const double step_seconds = seconds_since(t_step);
    std::map<std::string, double> m = rollout_metrics(totals, at::cat(drawn_rewards), scorer);
    m["frac_zero_std_groups"] = static_cast<double>(zero_std_drawn) / drawn;
    m["trained_groups"] = static_cast<double>(trained);
    if (o.dynamic_sampling) m["dynamic_sampling/rounds"] = static_cast<double>(rounds);
    m["clip/low_fraction"] = tokens > 0 ? clip_low / tokens : 0;
    m["clip/high_fraction"] = tokens > 0 ? clip_high / tokens : 0;
    m["kl"] = tokens > 0 ? kl / tokens : 0;
    m["entropy"] = tokens > 0 ? entropy / tokens : 0;
    m["grad_norm"] = grad_norm;
    m["learning_rate"] = lr;
    m["tokens_per_second"] = totals["sum"]["generated_tokens"].get<double>() /
                             std::max(totals["max"]["t_rollout"].get<double>(), 1e-9);
    m["time/rollout"] = t_rollout;
    m["time/reward"] = t_reward;
    m["time/reference"] = t_ref;
    m["time/train"] = t_train;
    m[kSecondsPerStepKey] = step_seconds;
    // Expert load imbalance per MoE layer (max/mean; 1 = balanced), and the worst layer.
    for (size_t l = 0; l < load.max_over_mean.size(); ++l) {
      m[fmt::format("moe/load_max_over_mean/layer_{}", load.layers[l])] = load.max_over_mean[l];
    }
    if (!load.max_over_mean.empty()) {
      m["moe/load_max_over_mean"] = *std::max_element(load.max_over_mean.begin(), load.max_over_mean.end());
    }
    metrics.log(state.step, m);
    // The first log_completions rows drawn (one-rank order), whichever rank sampled them.
    std::vector<Json> all_samples;
    if (o.log_completions > 0) {
      for (const Json& part : dist.all_gather_json(sample_rows, "samples")) {
        for (const Json& row : part) all_samples.push_back(row);
      }
    }
    std::sort(all_samples.begin(), all_samples.end(), [](const Json& a, const Json& b) { return a["i"] < b["i"]; });
    for (const Json& row : all_samples) {
      if (samples) {
        samples->write({{"stage", ctx.stage_name}, {"step", state.step}, {"prompt", row["prompt"]},
                        {"completion", row["completion"]}, {"reward", row["reward"]}, {"why", row["why"]}});
      }
    }
    if (dist.is_main()) {
      log::info("{} {}", ctx.stage_name,
                format_progress(state.step, o.max_steps, m,
                                {"reward/mean", "accuracy", "completion/mean_length", "kl", "frac_zero_std_groups",
                                 kSecondsPerStepKey}));
    }
    const bool last = state.step == o.max_steps;
    if (last || state.step % kReplicaCheckSteps == 0) {
      check_replicas_equal(dist, replica_tensors(*policy), fmt::format("{} step {}", ctx.stage_name, state.step));
    }
    if (last || (o.save_steps > 0 && state.step % o.save_steps == 0)) {
      save_checkpoint_synced(dist, ckpt_root, *policy, tokenizer, optimizer, state, o.save_total_limit,
                             reference.get());
    }
  }

  StageResult result;
  result.model_dir = (fs::path(ctx.run_dir) / "models" / ctx.stage_name).string();
  save_final_model(dist, *policy, tokenizer, result.model_dir);
  result.summary = {{"type", "grpo"},
                    {"params", policy->num_parameters()},
                    {"active_params", policy->num_active_parameters()},
                    {"steps", state.step},
                    {"seconds", seconds_since(t_stage)}};
  return result;
}

}  // namespace r1kit::pipelines::grpo
