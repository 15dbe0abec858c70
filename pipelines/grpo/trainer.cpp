// run_grpo (see trainer.h). One step = one rollout batch of prompts_per_step x
// num_generations completions and num_iterations optimizer steps on it.
#include "pipelines/grpo/trainer.h"

#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "pipelines/checkpoint.h"
#include "pipelines/grpo/advantages.h"
#include "pipelines/grpo/loss.h"
#include "pipelines/prompt_data.h"
#include "pipelines/schedule.h"
#include "policy/balancing.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"
#include "rewards/scorer.h"
#include "rollout/engine.h"
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

// The policy's view of a rollout batch: each row is prompt + completion, right-padded, with
// inputs = tokens[:-1] and targets = tokens[1:]; the mask marks the completion targets.
struct TrainBatch {
  at::Tensor inputs;         // [N, L] int64
  at::Tensor targets;        // [N, L] int64
  at::Tensor mask;           // [N, L] fp32
  at::Tensor logprobs_roll;  // [N, L] fp32 the sampler's logprobs at the completion targets
};

TrainBatch make_batch(const rollout::Rollouts& r, bool mask_truncated, const at::Device& device) {
  const int64_t N = static_cast<int64_t>(r.rows.size());
  int64_t L = 1;
  for (const auto& row : r.rows) {
    L = std::max<int64_t>(L, static_cast<int64_t>(row.prompt_ids.size() + row.completion_ids.size()) - 1);
  }
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


// Groups of G scored completions, rows of a group contiguous (row b*G + g).
struct GroupBatch {
  rollout::Rollouts rollouts;                  // N rows; prompt_index indexes prompt_texts
  std::vector<rewards::RewardResult> scored;   // [N]
  std::vector<std::string> prompt_texts;       // [B]
  std::vector<const Json*> prompt_rows;        // [B]
  double seconds_rollout = 0, seconds_reward = 0;

  int64_t size() const { return static_cast<int64_t>(prompt_texts.size()); }
  at::Tensor rewards_tensor() const {  // [N] fp32, a skipped reward counts as 0
    std::vector<float> v;
    for (const auto& r : scored) v.push_back(static_cast<float>(r.value.value_or(0.0)));
    return at::tensor(v);
  }
  // Appends the groups of `other` marked in `keep`, up to `limit` groups in all.
  void append(const GroupBatch& other, const std::vector<bool>& keep, int64_t limit) {
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
};

// Rolls out G completions for each prompt row and scores them (weighted sum, parts kept).
GroupBatch sample_groups(rollout::Engine& engine, const Tokenizer& tokenizer, const PromptData& data,
                         const rewards::Scorer& scorer, ThreadPool& pool, const std::vector<const Json*>& rows,
                         const std::vector<uint64_t>& seeds, int64_t G, const rollout::SamplingOptions& sampling) {
  const auto t0 = Clock::now();
  GroupBatch out;
  std::vector<std::vector<int32_t>> prompts;
  for (const Json* row : rows) {
    out.prompt_texts.push_back(data.render(*row));
    out.prompt_rows.push_back(row);
    prompts.push_back(tokenizer.encode(out.prompt_texts.back()));
  }
  out.rollouts = engine.generate(prompts, G, sampling, seeds);
  out.seconds_rollout = seconds_since(t0);
  const auto t1 = Clock::now();
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

// DAPO's dynamic-sampling filter: keep the groups whose rewards are not all equal.
std::vector<bool> spread_groups(const Advantages& a) {
  std::vector<bool> keep;
  const at::Tensor zero = a.zero_std_group.cpu();
  for (int64_t b = 0; b < zero.size(0); ++b) keep.push_back(!zero[b].item<bool>());
  return keep;
}


// Reward, accuracy and length statistics of a batch of scored groups.
std::map<std::string, double> rollout_metrics(const GroupBatch& g, const rewards::Scorer& scorer) {
  const double N = std::max<double>(1, g.rollouts.rows.size());
  const at::Tensor r = g.rewards_tensor();  // [N]
  std::map<std::string, double> m;
  m["reward/mean"] = r.numel() > 0 ? r.mean().item<double>() : 0;
  m["reward/std"] = r.numel() > 1 ? r.std().item<double>() : 0;
  std::map<std::string, double> part_sums;
  double correct = 0;
  for (const auto& s : g.scored) {
    for (const auto& [name, v] : s.parts) part_sums[name] += v;
    // Accuracy: the share of completions whose first reward (the task's checker) is full.
    if (!scorer.entries().empty()) {
      auto it = s.parts.find(scorer.entries()[0].name);
      correct += (it != s.parts.end() ? it->second : s.value.value_or(0)) >= 1.0;
    }
  }
  for (const auto& [name, sum] : part_sums) m["reward/" + name] = sum / N;
  if (!scorer.entries().empty()) m["accuracy"] = correct / N;
  double len_sum = 0, len_max = 0, truncated = 0;
  for (const auto& row : g.rollouts.rows) {
    len_sum += row.completion_ids.size();
    len_max = std::max<double>(len_max, row.completion_ids.size());
    truncated += row.finish == rollout::FinishReason::kLength;
  }
  m["completion/mean_length"] = len_sum / N;
  m["completion/max_length"] = len_max;
  m["completion/frac_truncated"] = truncated / N;
  return m;
}

}  // namespace

StageResult run_grpo(const GrpoOptions& o, const StageContext& ctx) {
  const auto t_stage = Clock::now();
  const DeviceChoice device = resolve_device(o.device);
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
    if (auto latest = latest_checkpoint(ckpt_root)) {
      state = load_checkpoint(*latest, *policy, optimizer, reference.get());
      log::info("{}: resumed from {} (step {})", ctx.stage_name, *latest, state.step);
    }
  }
  // Each stage logs into RUN/<stage>/ (metrics.jsonl + TensorBoard events).
  MetricsLogger metrics((fs::path(ctx.run_dir) / ctx.stage_name).string(), /*enabled=*/true);
  if (ctx.resume) metrics.truncate_after(state.step);  // replayed steps are not logged twice
  JsonlAppender samples((fs::path(ctx.run_dir) / "samples.jsonl").string());

  rollout::EngineOptions engine_options;
  engine_options.max_batch_rows = o.generation_batch_rows;
  // Completion text for rewards: special tokens such as <think> stay (the format reward reads
  // them); the EOS that ended a row is not part of what the model "said".
  const std::vector<int64_t> eos_ids = policy->config().eos_token_ids;
  rollout::Engine engine(policy, engine_options, [eos_ids, &tokenizer](const std::vector<int32_t>& ids) {
    std::vector<int32_t> kept;
    for (int32_t id : ids) {
      if (std::find(eos_ids.begin(), eos_ids.end(), id) == eos_ids.end()) kept.push_back(id);
    }
    return tokenizer.decode(kept, /*skip_special_tokens=*/false);
  });
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

  for (int64_t step = state.step; step < o.max_steps; ++step) {
    const auto t_step = Clock::now();
    // 1-4. Prompts (the next B of the seeded stream), G completions each from the policy
    // being trained, rewards, group-relative advantages. With dynamic sampling (DAPO) the
    // groups whose rewards are all equal are dropped and more prompts drawn, up to a cap.
    policy->eval();
    GroupBatch groups;     // what is trained on
    GroupBatch drawn_all;  // everything sampled this step (the metrics: unbiased by the filter)
    int64_t drawn = 0, rounds = 0, zero_std_drawn = 0;
    double t_rollout = 0, t_reward = 0, generated_tokens = 0;
    while (rounds == 0 || (o.dynamic_sampling && groups.size() < B && rounds < o.dynamic_sampling_max_rounds)) {
      const std::vector<const Json*> rows = data.rows(state.data_position, B);
      state.data_position += B;
      std::vector<uint64_t> seeds;
      for (int64_t b = 0; b < B; ++b) {
        // Round r's prompts get seeds B*r.. so that each round samples afresh.
        seeds.push_back(rollout::prompt_seed(o.seed * 1000003ULL + static_cast<uint64_t>(step), drawn + b));
      }
      const GroupBatch round = sample_groups(engine, tokenizer, data, scorer, pool, rows, seeds, G, sampling);
      t_rollout += round.seconds_rollout;
      t_reward += round.seconds_reward;
      generated_tokens += round.rollouts.generated_tokens;
      drawn += B;
      ++rounds;
      const Advantages check = group_advantages(round.rewards_tensor(), G, {o.scale_rewards});
      zero_std_drawn += check.num_zero_std;
      drawn_all.append(round, std::vector<bool>(B, true), B);
      groups.append(round, o.dynamic_sampling ? spread_groups(check) : std::vector<bool>(B, true), B);
    }
    if (groups.size() == 0) {
      // Every drawn group was uniform: no learning signal at all. Skip the update, log the step.
      log::warn("{} step {}: all {} drawn groups had equal rewards; no update", ctx.stage_name, step + 1, drawn);
    }
    const rollout::Rollouts& rollouts = groups.rollouts;
    const int64_t N = static_cast<int64_t>(rollouts.rows.size());  // B*G, or fewer when every draw was uniform
    const at::Tensor reward_t = groups.rewards_tensor();            // [N]
    const Advantages adv = N > 0 ? group_advantages(reward_t, G, {o.scale_rewards}) : Advantages{};

    // 5. Old-policy and reference logprobs.
    const auto t_ref0 = Clock::now();
    const TrainBatch batch = make_batch(rollouts, o.mask_truncated_completions, device.device);
    const int64_t micro = o.per_device_train_batch_size;
    const at::Tensor logprobs_old =
        truncated_sampling && N > 0 ? score_batch(*policy, batch, micro, o.temperature) : batch.logprobs_roll;
    at::Tensor logprobs_ref;
    if (reference && N > 0) logprobs_ref = score_batch(*reference, batch, micro, o.temperature);
    const double t_ref = seconds_since(t_ref0);

    // 6. num_iterations optimizer steps over the batch, micro-batched.
    const auto t_train0 = Clock::now();
    policy->train();
    const double lr = learning_rate_at({o.learning_rate, o.lr_scheduler_type, o.warmup_steps, o.max_steps}, step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    const double batch_tokens = batch.mask.sum().item<double>();
    const int64_t num_micro = (N + micro - 1) / micro;
    const at::Tensor advantages = N > 0 ? adv.values.to(device.device) : at::Tensor();
    double grad_norm = 0, kl = 0, clip_low = 0, clip_high = 0, entropy = 0, tokens = 0;
    for (int64_t it = 0; it < o.num_iterations && N > 0; ++it) {
      optimizer.zero_grad();
      for (int64_t s = 0; s < N; s += micro) {
        const int64_t n = std::min(micro, N - s);
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
      grad_norm = torch::nn::utils::clip_grad_norm_(policy->parameters(), o.max_grad_norm);
      optimizer.step();
    }
    // 7. Aux-loss-free balancing from this step's expert load (DeepSeek-V3).
    const policy::ExpertLoadReport load = policy::update_router_biases(*policy, policy->config().bias_update_speed);
    if (reference && o.ref_model_sync_steps > 0 && (step + 1) % o.ref_model_sync_steps == 0) {
      policy::copy_weights(*policy, *reference);  // R1-Zero: reference reset every 400 steps
    }
    const double t_train = seconds_since(t_train0);
    state.step = step + 1;

    // 8. Metrics (over everything drawn: the dynamic-sampling filter would bias them),
    // samples, checkpoint.
    const double step_seconds = seconds_since(t_step);
    std::map<std::string, double> m = rollout_metrics(drawn_all, scorer);
    m["frac_zero_std_groups"] = static_cast<double>(zero_std_drawn) / drawn;
    m["trained_groups"] = static_cast<double>(groups.size());
    if (o.dynamic_sampling) m["dynamic_sampling/rounds"] = static_cast<double>(rounds);
    m["clip/low_fraction"] = tokens > 0 ? clip_low / tokens : 0;
    m["clip/high_fraction"] = tokens > 0 ? clip_high / tokens : 0;
    m["kl"] = tokens > 0 ? kl / tokens : 0;
    m["entropy"] = tokens > 0 ? entropy / tokens : 0;
    m["grad_norm"] = grad_norm;
    m["learning_rate"] = lr;
    m["tokens_per_second"] = generated_tokens / std::max(t_rollout, 1e-9);
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
    const int64_t drawn_rows = static_cast<int64_t>(drawn_all.rollouts.rows.size());
    for (int64_t i = 0; i < std::min<int64_t>(o.log_completions, drawn_rows); ++i) {
      const rollout::Rollout& row = drawn_all.rollouts.rows[i];
      samples.write({{"stage", ctx.stage_name}, {"step", state.step}, {"prompt", drawn_all.prompt_texts[row.prompt_index]},
                     {"completion", row.text}, {"reward", drawn_all.scored[i].value.value_or(0.0)},
                     {"why", drawn_all.scored[i].why}});
    }
    log::info("{} {}", ctx.stage_name,
              format_progress(state.step, o.max_steps, m,
                              {"reward/mean", "accuracy", "completion/mean_length", "kl", "frac_zero_std_groups",
                               kSecondsPerStepKey}));
    const bool last = state.step == o.max_steps;
    if (last || (o.save_steps > 0 && state.step % o.save_steps == 0)) {
      save_checkpoint(ckpt_root, *policy, tokenizer, optimizer, state, o.save_total_limit, reference.get());
    }
  }

  StageResult result;
  result.model_dir = (fs::path(ctx.run_dir) / "models" / ctx.stage_name).string();
  policy::save_pretrained(*policy, result.model_dir);
  tokenizer.save((fs::path(result.model_dir) / "tokenizer.json").string());
  result.summary = {{"type", "grpo"},
                    {"params", policy->num_parameters()},
                    {"active_params", policy->num_active_parameters()},
                    {"steps", state.step},
                    {"seconds", seconds_since(t_stage)}};
  return result;
}

}  // namespace r1kit::pipelines::grpo
