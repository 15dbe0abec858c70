// bench train (see bench_train.h). The model is a tiny random qwen3_moe so the whole run takes
// a few minutes on a 2-core CPU; per-step overheads (Python, the Trainer loop, generate's
// per-token work) therefore weigh more than on a large model, which is what a C++ trainer
// removes. Timing: r1kit's own per-step "time/s_per_step" (RUN/grpo/metrics.jsonl: prompts, rollout,
// rewards, advantages, loss, backward, clip, AdamW, logging; the final checkpoint is not
// part of a step) vs TRL's on_step_begin..on_step_end (the same span; TRL's logging and
// data-loader fetch fall outside it, which favours TRL).
#include "bench/bench_train.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "bench/peer_runner.h"
#include "pipelines/checkpoint.h"
#include "pipelines/grpo/trainer.h"
#include "policy/pretrained.h"
#include "src/bpe_trainer.h"
#include "src/error.h"
#include "src/logging.h"
#include "src/metrics.h"
#include "src/tokenizer.h"

namespace r1kit::bench {
namespace {

constexpr const char* kEos = "<|endoftext|>";
constexpr int64_t kDataRows = 64;  // prompts in the JSONL; the default run reads 16 of them

// R1-Zero prompts around small sums: the template's text is the same for every row, so the
// prompt lengths differ by a few tokens only.
std::vector<std::string> make_prompts(int64_t rows) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> pick(2, 99);
  const std::string tmpl = pipelines::grpo::kR1ZeroTemplate;
  const size_t at = tmpl.find("{prompt}");
  std::vector<std::string> out;
  for (int64_t i = 0; i < rows; ++i) {
    const std::string q = fmt::format("What is {} + {}?", pick(rng), pick(rng));
    out.push_back(tmpl.substr(0, at) + q + tmpl.substr(at + 8));
  }
  return out;
}

// A 512-token byte-level BPE trained on the prompts. The trainer keeps the four tags as added
// tokens that are NOT special (as in Qwen3's and DeepSeek-R1's tokenizers): TRL decodes
// completions with skip_special_tokens=True, which would erase special tags before the rewards.
Tokenizer make_tokenizer(const std::vector<std::string>& prompts) {
  BpeTrainerOptions o;
  o.vocab_size = 512;
  o.special_tokens = {kEos, "<think>", "</think>", "<answer>", "</answer>"};
  std::vector<std::string> corpus = prompts;
  corpus.push_back("<think> 12 + 30 = 42 </think> <answer> 42 </answer>");
  return train_bpe(corpus, o);
}

// Qwen2.5-1.5B's shape with the task's tokenizer: its ids are the first rows of the 151936.
policy::ModelConfig qwen2_1_5b_config(const Tokenizer& tok) {
  policy::ModelConfig c;
  c.model_type = "qwen2";
  c.vocab_size = 151936;
  c.hidden_size = 1536;
  c.intermediate_size = 8960;
  c.num_hidden_layers = 28;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 2;
  c.head_dim = 128;
  c.qkv_bias = true;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 4096;
  c.rope.theta = 1000000.0;
  const int64_t eos = *tok.token_to_id(kEos);
  c.eos_token_ids = {eos};
  c.pad_token_id = eos;
  return c;
}

// The task's tiny qwen3_moe: D 64, L 2, H 4 / Hkv 2 (Dh 16), E 8 experts top-2.
policy::ModelConfig make_config(const Tokenizer& tok) {
  policy::ModelConfig c;
  c.model_type = "qwen3_moe";
  c.vocab_size = tok.vocab_size();
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 512;
  c.num_experts = 8;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 32;
  c.qk_norm = true;
  c.norm_topk_prob = true;
  c.bias_update_speed = 0.0;  // HF's qwen3_moe has no router bias to update; keep the work equal
  const int64_t eos = *tok.token_to_id(kEos);
  c.eos_token_ids = {eos};
  c.pad_token_id = eos;
  return c;
}

struct Side {
  double seconds_per_step = 0;
  double completion_mean_length = 0;
  double reward_mean = 0;
  double wall_seconds = 0;  // the whole run: start-up, model load, all steps, save
  Json extra = Json::object();
};

Side run_ours(const std::string& model_dir, const std::string& data, const std::string& run_dir,
              const BenchTrainArgs& a) {
  // The stage as a recipe would give it (and checked the same way).
  const Json stage_options = {
      {"model", model_dir},
      {"data", data},
      {"prompt_template", "{prompt}"},  // the JSONL holds the rendered prompts, as TRL reads them
      {"rewards", Json::array({{{"name", "format"}, {"weight", 1.0}}, {{"name", "tag_count"}, {"weight", 1.0}}})},
      {"prompts_per_step", a.prompts},
      {"num_generations", a.group},
      {"per_device_train_batch_size", a.prompts * a.group},  // one micro-batch, as TRL's B*G
      {"num_iterations", 1},
      {"max_steps", a.warmup + a.steps},
      {"max_completion_length", a.max_completion_length},
      {"temperature", 1.0},
      {"generation_batch_rows", std::max<int64_t>(64, a.prompts * a.group)},
      {"loss_type", "dapo"},
      {"scale_rewards", "group"},
      {"beta", 0.0},
      {"learning_rate", a.learning_rate},
      {"bf16", a.bf16},
      {"gradient_checkpointing", a.gradient_checkpointing},
      {"device", a.device}};
  const pipelines::grpo::GrpoOptions o = pipelines::grpo::parse_grpo_options(stage_options, {"bench train: ", 1});
  const auto t0 = std::chrono::steady_clock::now();
  const std::string stage = "grpo";
  pipelines::grpo::run_grpo(o, pipelines::StageContext{run_dir, stage, false});
  Side s;
  s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const std::string metrics_file = run_dir + "/" + stage + "/metrics.jsonl";  // trainer.h: RUN/<stage>/
  std::ifstream in(metrics_file);
  if (!in) throw Error("bench train: the trainer wrote no " + metrics_file);
  std::string line;
  int64_t timed = 0;
  Json step_seconds = Json::array();
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const Json row = Json::parse(line);
    const double sec = row.at(kSecondsPerStepKey).get<double>();
    step_seconds.push_back(sec);
    if (row.at("step").get<int64_t>() <= a.warmup) continue;
    s.seconds_per_step += sec;
    s.completion_mean_length += row.value("completion/mean_length", 0.0);
    s.reward_mean += row.value("reward/mean", 0.0);
    s.extra["rollout_seconds"] = s.extra.value("rollout_seconds", 0.0) + row.value("time/rollout", 0.0) / a.steps;
    s.extra["train_seconds"] = s.extra.value("train_seconds", 0.0) + row.value("time/train", 0.0) / a.steps;
    // Memory: the steps' peaks (live tensors; resident set), maxima over the timed steps.
    for (const char* key : {"memory/peak_bytes", "memory/peak_rss_bytes"}) {
      s.extra[key] = std::max(s.extra.value(key, 0.0), row.value(key, 0.0));
    }
    ++timed;
  }
  if (timed != a.steps) {
    throw Error(fmt::format("bench train: {} has {} timed steps, expected {}", metrics_file, timed, a.steps));
  }
  s.seconds_per_step /= timed;
  s.completion_mean_length /= timed;
  s.reward_mean /= timed;
  s.extra["step_seconds"] = step_seconds;
  return s;
}

Side run_trl(const std::string& model_dir, const std::string& data, const BenchTrainArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const Json j = run_peer({"bench/peers/trl_grpo.py",
                           {"--model",
                            model_dir,
                            "--data",
                            data,
                            "--prompts-per-step",
                            std::to_string(a.prompts),
                            "--group",
                            std::to_string(a.group),
                            "--max-completion-length",
                            std::to_string(a.max_completion_length),
                            "--steps",
                            std::to_string(a.steps),
                            "--warmup",
                            std::to_string(a.warmup),
                            "--learning-rate",
                            fmt::format("{}", a.learning_rate),
                            "--threads",
                            std::to_string(at::get_num_threads()),
                            "--device",
                            a.device,
                            "--bf16",
                            a.bf16 ? "1" : "0",
                            "--gradient-checkpointing",
                            a.gradient_checkpointing ? "1" : "0"},
                           {{"TOKENIZERS_PARALLELISM", "false"}}});
  Side s;
  s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.seconds_per_step = j.at("seconds_per_step").get<double>();
  s.completion_mean_length = j.at("completion_mean_length").get<double>();
  s.reward_mean = j.at("reward_mean").get<double>();
  s.extra = j;
  return s;
}

// Writes the shared inputs into `dir`: model/ (config.json, model.safetensors,
// generation_config.json, tokenizer.json, tokenizer_config.json) and prompts.jsonl.
int64_t write_inputs(const std::string& dir, const std::string& model_dir, const std::string& data,
                     const std::string& shape) {
  const std::vector<std::string> prompts = make_prompts(kDataRows);
  const Tokenizer tok = make_tokenizer(prompts);
  if (shape != "tiny" && shape != "qwen2-1.5b") throw Error("bench train: --shape " + shape + ": tiny or qwen2-1.5b");
  const policy::ModelConfig config = shape == "tiny" ? make_config(tok) : qwen2_1_5b_config(tok);
  auto model = policy::create_model(config, /*seed=*/1);
  pipelines::save_model_directory(*model, tok, model_dir);  // what a stage exports
  std::ofstream jsonl(data);
  for (const std::string& p : prompts) jsonl << Json{{"prompt", p}}.dump() << "\n";
  if (!jsonl) throw Error("bench train: cannot write " + data + " in " + dir);
  return model->num_parameters();
}

}  // namespace

int bench_train(const BenchTrainArgs& a) {
  if (a.prompts < 1 || a.group < 2 || a.max_completion_length < 1 || a.steps < 1 || a.warmup < 0) {
    throw Error(
        "bench train: need prompts >= 1, group >= 2 (GRPO), max completion length >= 1, steps >= 1, "
        "warmup >= 0");
  }
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  if (a.json) log::set_level(log::Level::Warn);
  const ScratchDir scratch("bench_train");  // the shared inputs and r1kit's run directory
  const std::string& dir = scratch.path();
  const std::string model_dir = dir + "/model", data = dir + "/prompts.jsonl";
  const int64_t params = write_inputs(dir, model_dir, data, a.shape);
  const int64_t n = a.prompts * a.group;
  if (!a.json) {
    fmt::print(
        "bench train on {} ({} threads): {} ({} params){}{}, "
        "B={} prompts x G={} = {} completions/step, max_completion_length {}, stop at EOS, "
        "temperature 1, beta 0, loss dapo, lr {}, {} warm-up + {} timed steps\n",
        a.device, at::get_num_threads(),
        a.shape == "tiny" ? "qwen3_moe D=64 L=2 H=4/Hkv=2 E=8 K=2" : "qwen2 D=1536 L=28 H=12/Hkv=2 I=8960 V=151936",
        params, a.bf16 ? ", bf16" : "", a.gradient_checkpointing ? ", gradient checkpointing" : "", a.prompts, a.group,
        n, a.max_completion_length, a.learning_rate, a.warmup, a.steps);
    std::fflush(stdout);
  }
  const Side ours = run_ours(model_dir, data, dir + "/run", a);
  if (!a.json) {
    fmt::print(
        "r1kit  {:8.3f} s/step  (rollout {:.3f} s, train {:.3f} s; completion mean length {:.1f}, "
        "reward mean {:.3f}; run {:.1f} s)\n",
        ours.seconds_per_step, ours.extra["rollout_seconds"].get<double>(), ours.extra["train_seconds"].get<double>(),
        ours.completion_mean_length, ours.reward_mean, ours.wall_seconds);
    std::fflush(stdout);
  }
  Json result = {{"bench", "train"},
                 {"device", a.device},
                 {"threads", at::get_num_threads()},
                 {"model", a.shape == "tiny" ? "qwen3_moe" : "qwen2-1.5b"},
                 {"bf16", a.bf16},
                 {"gradient_checkpointing", a.gradient_checkpointing},
                 {"params", params},
                 {"prompts", a.prompts},
                 {"group", a.group},
                 {"max_completion_length", a.max_completion_length},
                 {"warmup_steps", a.warmup},
                 {"timed_steps", a.steps},
                 {"learning_rate", a.learning_rate},
                 {"loss_type", "dapo"},
                 {"beta", 0.0},
                 {"temperature", 1.0},
                 {"num_iterations", 1},
                 {"eos", "both stop at EOS"},
                 {"rewards", "format + tag_count"},
                 {"r1kit_seconds_per_step", ours.seconds_per_step},
                 {"r1kit_step_seconds", ours.extra["step_seconds"]},
                 {"r1kit_rollout_seconds_per_step", ours.extra["rollout_seconds"]},
                 {"r1kit_train_seconds_per_step", ours.extra["train_seconds"]},
                 {"r1kit_completion_mean_length", ours.completion_mean_length},
                 {"r1kit_reward_mean", ours.reward_mean},
                 {"r1kit_peak_bytes", ours.extra["memory/peak_bytes"]},
                 {"r1kit_peak_rss_bytes", ours.extra["memory/peak_rss_bytes"]}};
  if (!a.skip_peer) {
    const Side trl = run_trl(model_dir, data, a);
    const double ratio = trl.seconds_per_step / ours.seconds_per_step;
    if (!a.json) {
      fmt::print(
          "TRL    {:8.3f} s/step  (completion mean length {:.1f}, reward mean {:.3f}; run {:.1f} s)  "
          "ratio {:.2f}x\n",
          trl.seconds_per_step, trl.completion_mean_length, trl.reward_mean, trl.wall_seconds, ratio);
    }
    result["trl_seconds_per_step"] = trl.seconds_per_step;
    result["trl_step_seconds"] = trl.extra.at("step_seconds");
    result["trl_completion_mean_length"] = trl.completion_mean_length;
    result["trl_reward_mean"] = trl.reward_mean;
    result["trl_version"] = trl.extra.at("trl");
    result["transformers_version"] = trl.extra.at("transformers");
    result["ratio"] = ratio;
    result["trl_peak_rss_bytes"] = trl.extra.value("peak_rss_bytes", Json());
    result["trl_peak_bytes"] = trl.extra.value("peak_bytes", Json());
  }
  fmt::print("{}\n", result.dump());
  return 0;
}

}  // namespace r1kit::bench
