// run_sft (see sft.h): batches -> forward -> chunked logprobs -> masked mean NLL -> AdamW.
#include "pipelines/sft.h"

#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "pipelines/checkpoint.h"
#include "pipelines/schedule.h"
#include "policy/balancing.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"
#include "src/bpe_trainer.h"
#include "src/distributed.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/metrics.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// Training examples as (tokens, loss mask) of at most seq_len + 1 tokens.
struct Example {
  std::vector<int32_t> tokens;
  std::vector<float> mask;  // per target position (tokens[1:])
};

std::vector<Example> make_examples(const std::vector<Json>& rows, const SftOptions& o, const Tokenizer& tok,
                                   int32_t eos) {
  std::vector<Example> out;
  const size_t window = static_cast<size_t>(o.seq_len) + 1;
  std::vector<int32_t> stream;  // {"text"} rows are packed: concatenated with EOS, cut in windows
  for (const Json& row : rows) {
    if (row.contains(o.text_field)) {
      auto ids = tok.encode(row[o.text_field].get<std::string>());
      stream.insert(stream.end(), ids.begin(), ids.end());
      stream.push_back(eos);
      continue;
    }
    Example e;
    e.tokens = tok.encode(row.at(o.prompt_field).get<std::string>());
    const size_t prompt = e.tokens.size();
    auto completion = tok.encode(row.at(o.completion_field).get<std::string>());
    e.tokens.insert(e.tokens.end(), completion.begin(), completion.end());
    e.tokens.push_back(eos);
    if (e.tokens.size() > window) e.tokens.resize(window);
    for (size_t t = 0; t + 1 < e.tokens.size(); ++t) e.mask.push_back(t + 1 >= prompt ? 1.f : 0.f);
    out.push_back(std::move(e));
  }
  for (size_t s = 0; s + window <= stream.size(); s += window) {
    Example e;
    e.tokens.assign(stream.begin() + s, stream.begin() + s + window);
    e.mask.assign(window - 1, 1.f);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

SftOptions parse_sft_options(const Json& j, const std::string& where) {
  SftOptions o;
  JsonFields f(j, where);
  f.ignore("name");
  f.ignore("type");
  f.get("model", o.model);
  f.get("model_config", o.model_config);
  f.get("tokenizer", o.tokenizer);
  f.get("tokenizer_vocab_size", o.tokenizer_vocab_size);
  f.get("special_tokens", o.special_tokens);
  f.require("data", o.data);
  f.get("text_field", o.text_field);
  f.get("prompt_field", o.prompt_field);
  f.get("completion_field", o.completion_field);
  f.get("seq_len", o.seq_len);
  f.get("batch_size", o.batch_size);
  f.get("max_steps", o.max_steps);
  f.get("learning_rate", o.learning_rate);
  f.get("weight_decay", o.weight_decay);
  f.get("max_grad_norm", o.max_grad_norm);
  f.get("lr_scheduler_type", o.lr_scheduler_type);
  f.get("warmup_steps", o.warmup_steps);
  f.get("seed", o.seed);
  f.get("save_steps", o.save_steps);
  f.get("save_total_limit", o.save_total_limit);
  f.get("device", o.device);
  f.finish();
  if (o.model.empty() == o.model_config.is_null()) f.fail("model", "give exactly one of model and model_config");
  if (o.seq_len <= 0 || o.batch_size <= 0) f.fail("seq_len", "seq_len and batch_size must be positive");
  return o;
}

namespace {

// Forward KL(teacher || student) per token at temperature T, times T^2 so that its gradient
// scale does not shrink with T; masked mean over the loss tokens. Full [rows, L, V] logits:
// fine for the tiny vocabularies of CPU recipes; a large-vocabulary run wants the chunked
// form of policy/logprobs.
at::Tensor kd_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& teacher_hidden,
                   const at::Tensor& teacher_head, const at::Tensor& mask, double T) {
  const at::Tensor logp_student = at::log_softmax(at::matmul(hidden, head.t()).to(at::kFloat) / T, -1);  // [B, L, V]
  const at::Tensor logp_teacher =
      at::log_softmax(at::matmul(teacher_hidden, teacher_head.t()).to(at::kFloat) / T, -1);             // [B, L, V]
  const at::Tensor kl = (logp_teacher.exp() * (logp_teacher - logp_student)).sum(-1);                    // [B, L]
  return (kl * mask).sum() / mask.sum().clamp_min(1.0) * (T * T);
}

}  // namespace

StageResult run_sft(const SftOptions& o, const StageContext& ctx, const KdTeacher* teacher) {
  const auto t0 = std::chrono::steady_clock::now();
  // Data parallel (src/distributed.h): each rank takes batch_size/W examples of every batch
  // (the same seeded global order), the loss is normalised by the global token count and the
  // gradients are summed over ranks: W ranks compute the one-rank update. Rank 0 writes.
  DistributedContext& dist = distributed();
  if (o.batch_size % dist.world_size() != 0) {
    throw Error(ctx.stage_name + ".batch_size: " + std::to_string(o.batch_size) + " does not split evenly over " +
                std::to_string(dist.world_size()) + " ranks");
  }
  const int64_t batch_local = o.batch_size / dist.world_size(), batch_begin = dist.rank() * batch_local;
  const DeviceChoice device = rank_device(o.device);
  const std::vector<Json> rows = read_jsonl(o.data);
  if (rows.empty()) throw Error(o.data + ": no rows");

  // Tokenizer and model: given, or made here.
  Tokenizer tok = [&] {
    if (!o.tokenizer.empty()) return Tokenizer::load(o.tokenizer);
    if (!o.model.empty()) return Tokenizer::load(o.model);
    std::vector<std::string> texts;
    for (const Json& r : rows) {
      for (const std::string* key : {&o.text_field, &o.prompt_field, &o.completion_field}) {
        if (r.contains(*key) && r[*key].is_string()) texts.push_back(r[*key].get<std::string>());
      }
    }
    BpeTrainerOptions t;
    t.vocab_size = static_cast<int>(o.tokenizer_vocab_size);
    t.special_tokens = o.special_tokens;
    return train_bpe(texts, t);
  }();
  const int32_t eos = tok.token_to_id("<|endoftext|>").value_or(0);
  std::shared_ptr<policy::CausalLM> model;
  if (!o.model.empty()) {
    model = policy::load_pretrained(o.model, device);
  } else {
    Json cfg = o.model_config;
    cfg["vocab_size"] = tok.vocab_size();
    if (!cfg.contains("eos_token_id")) cfg["eos_token_id"] = eos;
    model = policy::create_model(policy::parse_model_config(cfg, ctx.stage_name + ".model_config"), o.seed);
    model->to(device.device, device.dtype);
  }
  const std::vector<Example> examples = make_examples(rows, o, tok, eos);
  if (examples.empty()) throw Error(o.data + ": no example of at least seq_len+1 tokens");

  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(o.learning_rate).weight_decay(o.weight_decay));
  const std::string ckpt_root = (fs::path(ctx.run_dir) / "checkpoints" / ctx.stage_name).string();
  TrainerState state;
  if (ctx.resume) {
    if (const auto chosen = agreed_latest_checkpoint(ckpt_root, dist)) state = load_checkpoint(*chosen, *model, optimizer);
  }
  // A fresh model is made from the seed on every rank: the check proves they agree.
  const std::vector<at::Tensor> replica = replica_tensors(*model);  // views: follow the updates
  check_replicas_equal(dist, replica, ctx.stage_name + " start");
  MetricsLogger metrics((fs::path(ctx.run_dir) / ctx.stage_name).string(), dist.is_main());
  if (ctx.resume) metrics.truncate_after(state.step);
  model->train();
  if (teacher != nullptr) teacher->model->eval();  // frozen: no dropout, no router-load counting
  double loss_value = 0;
  bool ran_steps = false;
  for (int64_t step = state.step; step < o.max_steps; ++step) {
    // The batch: examples at positions [data_position, +batch) of a seeded order (as PromptData).
    std::vector<const Example*> batch;
    // This rank's share: [batch_begin, +batch_local) of the batch.
    for (int64_t i : stream_indices(o.seed, state.data_position + batch_begin, batch_local,
                                    static_cast<int64_t>(examples.size()))) {
      batch.push_back(&examples[i]);
    }
    state.data_position += o.batch_size;
    int64_t L = 1;
    for (const Example* e : batch) L = std::max<int64_t>(L, static_cast<int64_t>(e->tokens.size()) - 1);
    // Padded to the longest row of all ranks: padding passes the MoE router too, and the
    // expert load must count the same tokens as on one rank.
    L = static_cast<int64_t>(dist.max_over_ranks(static_cast<double>(L), "batch length"));
    at::Tensor inputs = at::zeros({batch_local, L}, at::kLong), targets = at::zeros({batch_local, L}, at::kLong);
    at::Tensor mask = at::zeros({batch_local, L}, at::kFloat);
    for (int64_t i = 0; i < batch_local; ++i) {
      const Example& e = *batch[i];
      for (size_t t = 0; t + 1 < e.tokens.size(); ++t) {
        inputs[i][t] = e.tokens[t];
        targets[i][t] = e.tokens[t + 1];
        mask[i][t] = e.mask[t];
      }
    }
    inputs = inputs.to(device.device);
    targets = targets.to(device.device);
    mask = mask.to(device.device);
    const at::Tensor hidden = model->forward_hidden(inputs);                               // [B, L, D]
    const at::Tensor lp = policy::token_logprobs(hidden, model->lm_head_weight(), targets).logprobs;
    // Token mean over the GLOBAL batch; summed over ranks it is the one-rank loss.
    const double tokens_local = mask.sum().item<double>();
    const double tokens = std::max(1.0, dist.sum_over_ranks(tokens_local, "batch tokens"));
    const double share = dist.world_size() == 1 ? 1.0 : tokens_local / tokens;  // this rank's part of the mean
    const double rows_share = static_cast<double>(batch_local) / o.batch_size;
    const at::Tensor nll = -(lp * mask).sum() / tokens;
    at::Tensor loss = nll + model->aux_loss() * rows_share;
    double kd_value = 0;
    if (teacher != nullptr) {
      at::Tensor teacher_hidden;
      {
        at::NoGradGuard no_grad;
        teacher_hidden = teacher->model->forward_hidden(inputs);  // [B, L, D_teacher]
      }
      const at::Tensor kd = kd_loss(hidden, model->lm_head_weight(), teacher_hidden,
                                    teacher->model->lm_head_weight().detach(), mask, teacher->temperature);
      loss = (1 - teacher->weight) * nll + teacher->weight * kd * share + model->aux_loss() * rows_share;
      kd_value = dist.sum_over_ranks(kd.item<double>() * share, "kd");
    }
    // Cosine decays to 10% of the peak, as DeepSeek-R1 does for SFT (5e-5 -> 5e-6).
    const double lr = learning_rate_at({o.learning_rate, o.lr_scheduler_type, o.warmup_steps, o.max_steps, 0.1}, step);
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer.zero_grad();
    loss.backward();
    all_reduce_gradients(dist, model->parameters());
    const double grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), o.max_grad_norm);
    optimizer.step();
    policy::update_router_biases(*model, model->config().bias_update_speed,
                                 [&](at::Tensor& load) { dist.all_reduce_sum(load, "expert load"); });
    loss_value = dist.sum_over_ranks(loss.item<double>(), "loss");
    ran_steps = true;
    state.step = step + 1;
    std::map<std::string, double> row = {{"loss", loss_value}, {"grad_norm", grad_norm}, {"learning_rate", lr}};
    if (teacher != nullptr) row["kd"] = kd_value;
    metrics.log(state.step, row);
    if (dist.is_main() && (state.step % 25 == 0 || state.step == o.max_steps)) {
      log::info("{} step {}/{}  loss {:.4f}", ctx.stage_name, state.step, o.max_steps, loss_value);
    }
    if (state.step == o.max_steps || state.step % 50 == 0) {
      check_replicas_equal(dist, replica, ctx.stage_name + " step " + std::to_string(state.step));
    }
    if (state.step == o.max_steps || (o.save_steps > 0 && state.step % o.save_steps == 0)) {
      save_checkpoint_synced(dist, ckpt_root, *model, tok, optimizer, state, o.save_total_limit);
    }
  }
  StageResult result;
  result.model_dir = (fs::path(ctx.run_dir) / "models" / ctx.stage_name).string();
  save_final_model(dist, *model, tok, result.model_dir);
  result.summary = {{"type", "sft"}, {"params", model->num_parameters()}, {"active_params", model->num_active_parameters()},
                    {"steps", state.step},
                    {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  // A resumed run whose last checkpoint was already the final step trained nothing now: its
  // final loss is in metrics.jsonl, not in this attempt.
  if (ran_steps) result.summary["final_loss"] = loss_value;
  return result;
}

}  // namespace r1kit::pipelines
