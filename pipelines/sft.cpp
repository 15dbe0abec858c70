// run_sft (see sft.h): batches -> forward -> chunked logprobs -> masked mean NLL -> AdamW.
#include "pipelines/sft.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "pipelines/schedule.h"
#include "pipelines/training.h"
#include "policy/balancing.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"
#include "src/bpe_trainer.h"
#include "src/chat_template.h"
#include "src/dataset_rows.h"
#include "src/distributed.h"
#include "src/files.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

using Example = SftExample;

// A conversation's ids and per-target loss mask from its per-token assistant mask (the
// target of position t is token t+1), cut to the window.
Example conversation_example(const ChatTemplate::Masked& m, size_t window, bool assistant_only) {
  Example e;
  e.tokens = m.ids;
  if (e.tokens.size() > window) e.tokens.resize(window);
  for (size_t t = 0; t + 1 < e.tokens.size(); ++t) e.mask.push_back(!assistant_only || m.assistant[t + 1] ? 1.f : 0.f);
  return e;
}

}  // namespace

std::vector<SftExample> sft_examples(const std::vector<DatasetRow>& rows, const SftOptions& o, const Tokenizer& tok,
                                     int32_t eos) {
  std::vector<Example> out;
  const size_t window = static_cast<size_t>(o.seq_len) + 1;
  std::vector<int32_t> stream;       // {"text"} rows are packed: concatenated with EOS, cut in windows
  std::optional<ChatTemplate> chat;  // parsed at the first conversational row
  const jinja::Dict stage_kwargs = jinja::from_json(o.chat_template_kwargs).dict();
  auto conversation = [&](const DatasetRow& row, const std::string& key) {
    if (!chat) chat.emplace(tok.chat_config(), o.model.empty() ? o.tokenizer : o.model);
    return conversation_from_row(row.fields, key, row.where, stage_kwargs);
  };
  for (const DatasetRow& row : rows) {
    const nlohmann::ordered_json& f = row.fields;
    if (auto it = f.find(o.messages_field); it != f.end() && it->is_array()) {
      const Conversation c = conversation(row, o.messages_field);
      out.push_back(
          conversation_example(chat->encode_with_assistant_mask(tok, c, row.where), window, o.assistant_only_loss));
      continue;
    }
    if (auto it = f.find(o.prompt_field); it != f.end() && it->is_array()) {
      auto completion = f.find(o.completion_field);
      if (completion == f.end() || !completion->is_array()) {
        throw Error(row.where + ": a conversational '" + o.prompt_field + "' needs '" + o.completion_field +
                    "' as a list of messages");
      }
      const Conversation c = conversation(row, o.prompt_field);
      out.push_back(conversation_example(chat->encode_completion(tok, c, jinja::from_json(*completion), row.where),
                                         window, /*assistant_only=*/true));
      continue;
    }
    auto text = [&](const std::string& key) {
      auto it = f.find(key);
      if (it == f.end() || !it->is_string()) {
        throw Error(missing_field_message(row, key,
                                          " (rows need '" + o.text_field + "', '" + o.messages_field + "', or '" +
                                              o.prompt_field + "' and '" + o.completion_field + "')"));
      }
      return it->get<std::string>();
    };
    if (f.contains(o.text_field)) {
      auto ids = tok.encode(text(o.text_field));
      stream.insert(stream.end(), ids.begin(), ids.end());
      stream.push_back(eos);
      continue;
    }
    Example e;
    e.tokens = tok.encode(text(o.prompt_field));
    const size_t prompt = e.tokens.size();
    auto completion = tok.encode(text(o.completion_field));
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

namespace {

// Forward KL(teacher || student) per token at temperature T, times T^2 so that its gradient
// scale does not shrink with T; masked mean over the loss tokens.
at::Tensor kd_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& teacher_hidden,
                   const at::Tensor& teacher_head, const at::Tensor& mask, double temperature) {
  // Chunked: neither side's [B, T, V] log-softmax is ever whole (policy/logprobs.h).
  const at::Tensor kl = policy::token_kl(hidden, head, teacher_hidden, teacher_head, {temperature});  // [B, T]
  return (kl * mask).sum() / mask.sum().clamp_min(1.0) * (temperature * temperature);
}

// The batch as the model sees it: rows right-padded to the longest row of all ranks, inputs =
// tokens[:-1], targets = tokens[1:], mask = the targets that count.
struct SftBatch {
  at::Tensor inputs;   // [B, T] int64 (B = this rank's rows)
  at::Tensor targets;  // [B, T] int64
  at::Tensor mask;     // [B, T] fp32
};

SftBatch make_batch(const std::vector<const Example*>& batch, const at::Device& device) {
  int64_t T = 1;
  for (const Example* e : batch) T = std::max<int64_t>(T, static_cast<int64_t>(e->tokens.size()) - 1);
  T = padded_length_over_ranks(T);
  const int64_t B = static_cast<int64_t>(batch.size());
  SftBatch b{at::zeros({B, T}, at::kLong), at::zeros({B, T}, at::kLong), at::zeros({B, T}, at::kFloat)};
  auto in = b.inputs.accessor<int64_t, 2>();
  auto tg = b.targets.accessor<int64_t, 2>();
  auto mk = b.mask.accessor<float, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const Example& e = *batch[i];
    for (size_t t = 0; t + 1 < e.tokens.size(); ++t) {
      in[i][t] = e.tokens[t];
      tg[i][t] = e.tokens[t + 1];
      mk[i][t] = e.mask[t];
    }
  }
  return {b.inputs.to(device), b.targets.to(device), b.mask.to(device)};
}

struct StepLoss {
  at::Tensor loss;  // scalar to backward(): this rank's part of the global batch's loss
  double kd = 0;    // the KD term over all ranks (0 without a teacher)
};

// Token-mean NLL over the GLOBAL batch (summed over ranks it is the one-rank loss), the MoE
// balance loss weighted by this rank's rows, and with a teacher the KD mix.
StepLoss sft_loss(policy::CausalLM& model, const SftBatch& b, const KdTeacher* teacher, int64_t batch_local,
                  int64_t batch_size) {
  DistributedContext& dist = distributed();
  const at::Tensor hidden = model.forward_hidden(b.inputs);                                          // [B, T, D]
  const at::Tensor lp = policy::token_logprobs(hidden, model.lm_head_weight(), b.targets).logprobs;  // [B, T]
  const double tokens_local = b.mask.sum().item<double>();
  const double tokens = std::max(1.0, dist.sum_over_ranks(tokens_local, "batch tokens"));
  const double share = dist.world_size() == 1 ? 1.0 : tokens_local / tokens;  // this rank's part of the mean
  const double rows_share = static_cast<double>(batch_local) / batch_size;
  const at::Tensor nll = -(lp * b.mask).sum() / tokens;
  if (teacher == nullptr) return {nll + model.aux_loss() * rows_share, 0};
  at::Tensor teacher_hidden;  // [B, T, D_teacher]
  {
    at::NoGradGuard no_grad;
    teacher_hidden = teacher->model->forward_hidden(b.inputs);
  }
  const at::Tensor kd = kd_loss(hidden, model.lm_head_weight(), teacher_hidden,
                                teacher->model->lm_head_weight().detach(), b.mask, teacher->temperature);
  const at::Tensor loss = (1 - teacher->weight) * nll + teacher->weight * kd * share + model.aux_loss() * rows_share;
  return {loss, dist.sum_over_ranks(kd.item<double>() * share, "kd")};
}

// The tokenizer: given, the model's, or trained here on the data's texts; with
// chat_template_path, that template is its chat template.
Tokenizer load_or_train_tokenizer(const SftOptions& o, const std::vector<DatasetRow>& rows) {
  Tokenizer tok = [&] {
    if (!o.tokenizer.empty()) return Tokenizer::load(o.tokenizer);
    if (!o.model.empty()) return Tokenizer::load(o.model);
    std::vector<std::string> texts;
    for (const DatasetRow& r : rows) {
      for (const std::string* key : {&o.text_field, &o.prompt_field, &o.completion_field}) {
        auto it = r.fields.find(*key);
        if (it != r.fields.end() && it->is_string()) texts.push_back(it->get<std::string>());
      }
      // A conversation's contents are text the tokenizer must cover too.
      if (auto it = r.fields.find(o.messages_field); it != r.fields.end() && it->is_array()) {
        for (const auto& m : *it) {
          if (m.is_object() && m.contains("content") && m["content"].is_string()) {
            texts.push_back(m["content"].get<std::string>());
          }
        }
      }
    }
    BpeTrainerOptions t;
    t.vocab_size = static_cast<int>(o.tokenizer_vocab_size);
    t.special_tokens = o.special_tokens;
    return train_bpe(texts, t);
  }();
  if (!o.chat_template_path.empty()) {
    Tokenizer::ChatConfig chat = tok.chat_config();
    chat.chat_template = read_text_file(o.chat_template_path);
    chat.source = o.chat_template_path;
    const bool has_eos = std::any_of(chat.special_tokens.begin(), chat.special_tokens.end(),
                                     [](const auto& kv) { return kv.first == "eos_token"; });
    if (!has_eos && tok.token_to_id("<|endoftext|>")) chat.special_tokens.emplace_back("eos_token", "<|endoftext|>");
    jinja::Template::parse(chat.chat_template, chat.source);  // a syntax error stops the stage here
    tok.set_chat_config(std::move(chat));
  }
  return tok;
}

// The model: loaded, or made from model_config with the tokenizer's vocabulary and the seed.
std::shared_ptr<policy::CausalLM> load_or_create_model(const SftOptions& o, const Tokenizer& tok, int32_t eos,
                                                       const DeviceChoice& device, const std::string& stage) {
  if (!o.model.empty()) return policy::load_pretrained(o.model, device);
  Json cfg = o.model_config;
  cfg["vocab_size"] = tok.vocab_size();
  if (!cfg.contains("eos_token_id")) cfg["eos_token_id"] = eos;
  auto model = policy::create_model(policy::parse_model_config(cfg, stage + ".model_config"), o.seed);
  model->to(device.device, device.dtype);
  return model;
}

// The registered stage: sft without a teacher.
StageResult run_sft_stage(const SftOptions& o, const StageContext& ctx) { return run_sft(o, ctx); }

// Ranks compare their weights this often (and at the start and the end).
constexpr int64_t kReplicaCheckSteps = 50;

}  // namespace

void read_sft_options(JsonFields& f, SftOptions& o, const StageSetting& setting) {
  f.get("model", o.model);
  f.get("model_config", o.model_config);
  f.get("tokenizer", o.tokenizer);
  f.get("tokenizer_vocab_size", o.tokenizer_vocab_size);
  f.get("special_tokens", o.special_tokens);
  f.require("data", o.data);
  f.get("text_field", o.text_field);
  f.get("prompt_field", o.prompt_field);
  f.get("completion_field", o.completion_field);
  f.get("messages_field", o.messages_field);
  f.get("chat_template_path", o.chat_template_path);
  f.get("assistant_only_loss", o.assistant_only_loss);
  read_chat_template_kwargs(f, o.chat_template_kwargs);
  f.get("seq_len", o.seq_len);
  f.get("batch_size", o.batch_size);
  f.get("max_steps", o.max_steps);
  read_optimizer_options(f, o.optimizer);
  read_memory_options(f, o.memory);
  read_lora_options(f, o.lora);
  read_checkpoint_options(f, o.checkpoints);
  f.get("seed", o.seed);
  f.get("device", o.device);
  if (o.model.empty() == o.model_config.is_null()) f.fail("model", "give exactly one of model and model_config");
  if (o.lora.lora.r > 0 && o.model.empty())
    f.fail("lora_r", "LoRA adapts a given model; a model made from model_config trains in full");
  if (!o.model_config.is_null()) {
    // Checked now, with the vocabulary the tokenizer will have, not after earlier stages ran.
    if (!o.model_config.is_object()) f.fail("model_config", "must be an object of config.json keys");
    Json cfg = o.model_config;
    if (!cfg.contains("vocab_size")) cfg["vocab_size"] = o.tokenizer_vocab_size;
    policy::parse_model_config(cfg, f.path("model_config"));
  }
  require_positive(f, "seq_len", o.seq_len);
  require_positive(f, "batch_size", o.batch_size);
  require_non_negative(f, "max_steps", o.max_steps);
  require_positive(f, "tokenizer_vocab_size", o.tokenizer_vocab_size);
  if (o.batch_size % setting.world_size != 0) {
    f.fail("batch_size", std::to_string(o.batch_size) + " does not split evenly over " +
                             std::to_string(setting.world_size) + " ranks");
  }
}

SftOptions parse_sft_options(const Json& j, const StageSetting& setting) {
  SftOptions o;
  JsonFields f(j, setting.where);
  f.ignore("name");
  f.ignore("type");
  read_sft_options(f, o, setting);
  f.finish();
  return o;
}

std::vector<StageInput> sft_inputs(const SftOptions& o) {
  std::vector<StageInput> in = {{"data", o.data, StageInput::Kind::kFile}};
  if (!o.model.empty()) in.push_back({"model", o.model, StageInput::Kind::kModelDir});
  if (!o.tokenizer.empty()) in.push_back({"tokenizer", o.tokenizer, StageInput::Kind::kTokenizer});
  if (!o.chat_template_path.empty()) {
    in.push_back({"chat_template_path", o.chat_template_path, StageInput::Kind::kFile});
  }
  return in;
}

StageResult run_sft(const SftOptions& o, const StageContext& ctx, const KdTeacher* teacher) {
  const auto t0 = std::chrono::steady_clock::now();
  // Data parallel (src/distributed.h): each rank takes batch_size/W examples of every batch
  // (the same seeded global order), the loss is normalised by the global token count and the
  // gradients are summed over ranks: W ranks compute the one-rank update. Rank 0 writes.
  DistributedContext& dist = distributed();
  const int64_t batch_local = o.batch_size / dist.world_size(), batch_begin = dist.rank() * batch_local;
  const DeviceChoice device = training_device(o.device);
  const std::vector<DatasetRow> rows = read_dataset(o.data);
  if (rows.empty()) throw Error(o.data + ": no rows");
  const Tokenizer tok = load_or_train_tokenizer(o, rows);
  const int32_t eos = tok.token_to_id("<|endoftext|>").value_or(0);
  const std::shared_ptr<policy::CausalLM> model = load_or_create_model(o, tok, eos, device, ctx.stage_name);
  prepare_lora(*model, o.lora, o.seed, ctx.stage_name);
  const std::vector<Example> examples = sft_examples(rows, o, tok, eos);
  if (examples.empty()) throw Error(o.data + ": no example of at least seq_len+1 tokens");

  Training training(*model, o.optimizer, o.memory, o.checkpoints, o.max_steps, ctx);
  model->train();
  if (teacher != nullptr) teacher->model->eval();  // frozen: no dropout, no router-load counting
  double loss_value = 0;
  bool ran_steps = false;
  for (int64_t step = training.state.step; step < o.max_steps; ++step) {
    // The batch: examples at positions [data_position, +batch) of a seeded order (as
    // PromptData); this rank's share is [batch_begin, +batch_local) of it.
    std::vector<const Example*> batch;
    for (int64_t i : stream_indices(o.seed, training.state.data_position + batch_begin, batch_local,
                                    static_cast<int64_t>(examples.size()))) {
      batch.push_back(&examples[i]);
    }
    training.state.data_position += o.batch_size;
    const SftBatch b = make_batch(batch, device.device);
    const double lr = training.begin_step(step);
    const StepLoss loss = sft_loss(*model, b, teacher, batch_local, o.batch_size);
    training.optimizer().zero_grad();
    training.backward(loss.loss);
    const double grad_norm = training.step_optimizer();
    policy::update_router_biases(*model, model->config().bias_update_speed,
                                 [&](at::Tensor& load) { dist.all_reduce_sum(load, "expert load"); });
    loss_value = dist.sum_over_ranks(loss.loss.item<double>(), "loss");
    ran_steps = true;
    std::map<std::string, double> row = {{"loss", loss_value}, {"grad_norm", grad_norm}, {"learning_rate", lr}};
    if (teacher != nullptr) row["kd"] = loss.kd;
    training.end_step(step, row, tok, kReplicaCheckSteps);
    if (dist.is_main() && (training.state.step % 25 == 0 || training.state.step == o.max_steps)) {
      log::info("{} step {}/{}  loss {:.4f}", ctx.stage_name, training.state.step, o.max_steps, loss_value);
    }
  }
  StageResult result;
  result.model_dir = training.save_final(tok, o.lora.merge_adapter);
  result.summary = {{"type", "sft"},
                    {"params", model->num_parameters()},
                    {"active_params", model->num_active_parameters()},
                    {"steps", training.state.step},
                    {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  // A resumed run whose last checkpoint was already the final step trained nothing now: its
  // final loss is in metrics.jsonl, not in this attempt.
  if (ran_steps) result.summary["final_loss"] = loss_value;
  return result;
}

namespace {
const StageRegistration kSft({"sft", "next-token training (pretraining or SFT); a fresh model from model_config",
                              /*writes_model=*/true, /*writes_data=*/false,
                              stage_parser(parse_sft_options, sft_inputs, run_sft_stage)});
}  // namespace

}  // namespace r1kit::pipelines
