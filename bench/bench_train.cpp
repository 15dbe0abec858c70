// bench train (see bench_train.h). The model is a tiny random qwen3_moe so the whole run takes
// a few minutes on a 2-core CPU; per-step overheads (Python, the Trainer loop, generate's
// per-token work) therefore weigh more than on a large model, which is what a C++ trainer
// removes. Timing: r1kit's own per-step "time/s_per_step" (RUN/grpo/metrics.jsonl: prompts, rollout,
// rewards, advantages, loss, backward, clip, AdamW, logging; the final checkpoint is not
// part of a step) vs TRL's on_step_begin..on_step_end (the same span; TRL's logging and
// data-loader fetch fall outside it, which favours TRL).
#include "bench/bench_train.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "pipelines/grpo/trainer.h"
#include "policy/pretrained.h"
#include "src/bpe_trainer.h"
#include "src/cli/commands.h"
#include "src/error.h"
#include "src/files.h"
#include "src/logging.h"
#include "src/metrics.h"
#include "src/tokenizer.h"

namespace r1kit::bench {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEos = "<|endoftext|>";
constexpr int64_t kDataRows = 64;  // prompts in the JSONL; the default run reads 16 of them

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The checkout that holds bench/peers/trl_grpo.py and .venv: the working directory, else the
// parent of the executable's folder (build-*/r1kit).
std::string source_root() {
  std::vector<fs::path> candidates = {fs::current_path()};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path());
  for (const fs::path& c : candidates) {
    if (fs::exists(c / "bench/peers/trl_grpo.py")) return c.string();
  }
  throw Error("bench train: bench/peers/trl_grpo.py not found in the working directory or next to the executable; "
              "run from the r1kit checkout");
}

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

// A 512-token byte-level BPE trained on the prompts. The four tags are added tokens that are
// NOT special, as in Qwen3's own tokenizer.json: TRL decodes completions with
// skip_special_tokens=True, which would erase special tags before the rewards see them.
Tokenizer make_tokenizer(const std::vector<std::string>& prompts) {
  BpeTrainerOptions o;
  o.vocab_size = 512;
  o.special_tokens = {kEos, "<think>", "</think>", "<answer>", "</answer>"};
  std::vector<std::string> corpus = prompts;
  corpus.push_back("<think> 12 + 30 = 42 </think> <answer> 42 </answer>");
  Json j = train_bpe(corpus, o).to_json();
  for (Json& added : j.at("added_tokens")) {
    if (added.at("content") != kEos) added["special"] = false;
  }
  return Tokenizer::from_json(j, "bench train tokenizer");
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
  pipelines::grpo::GrpoOptions o;
  o.model = model_dir;
  o.data = data;
  o.prompt_template = "{prompt}";  // the JSONL holds the rendered prompts, as TRL reads them
  o.rewards = Json::array({{{"name", "format"}, {"weight", 1.0}}, {{"name", "tag_count"}, {"weight", 1.0}}});
  o.prompts_per_step = a.prompts;
  o.num_generations = a.group;
  o.per_device_train_batch_size = a.prompts * a.group;  // one micro-batch, as TRL's B*G
  o.num_iterations = 1;
  o.max_steps = a.warmup + a.steps;
  o.max_completion_length = a.max_completion_length;
  o.temperature = 1.0;
  o.generation_batch_rows = std::max<int64_t>(64, a.prompts * a.group);
  o.loss_type = "dapo";
  o.scale_rewards = "group";
  o.beta = 0.0;
  o.learning_rate = a.learning_rate;
  o.device = "cpu";
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

Side run_trl(const std::string& model_dir, const std::string& data, const std::string& dir, const BenchTrainArgs& a) {
  const std::string root = source_root();
  const std::string python = root + "/.venv/bin/python";
  const std::string err_file = dir + "/trl_stderr.log";
  const std::string cmd = "TOKENIZERS_PARALLELISM=false " + shell_quote(python) + " " +
                          shell_quote(root + "/bench/peers/trl_grpo.py") + " --model " + shell_quote(model_dir) +
                          " --data " + shell_quote(data) + fmt::format(
                              " --prompts-per-step {} --group {} --max-completion-length {} --steps {} --warmup {}"
                              " --learning-rate {} --threads {}",
                              a.prompts, a.group, a.max_completion_length, a.steps, a.warmup, a.learning_rate,
                              at::get_num_threads()) +
                          " 2>" + shell_quote(err_file);
  const auto t0 = std::chrono::steady_clock::now();
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw Error("bench train: cannot run " + python);
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int rc = pclose(pipe);
  Side s;
  s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The result is the last stdout line holding "seconds_per_step" (the Trainer prints its own
  // log dicts before it).
  Json j;
  for (size_t end = out.size(); end > 0;) {
    const size_t nl = out.rfind('\n', end - 1);
    const size_t start = nl == std::string::npos ? 0 : nl + 1;
    const std::string line = out.substr(start, end - start);
    if (line.rfind("{\"seconds_per_step\"", 0) == 0) {
      j = Json::parse(line);
      break;
    }
    if (nl == std::string::npos) break;
    end = nl;
  }
  if (rc != 0 || j.is_null()) {
    std::ifstream err(err_file);
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
    throw Error(fmt::format("bench train: TRL peer failed (exit {}): {}\n{}", rc, cmd, text));
  }
  s.seconds_per_step = j.at("seconds_per_step").get<double>();
  s.completion_mean_length = j.at("completion_mean_length").get<double>();
  s.reward_mean = j.at("reward_mean").get<double>();
  s.extra = j;
  return s;
}

// Writes the shared inputs into `dir`: model/ (config.json, model.safetensors,
// generation_config.json, tokenizer.json, tokenizer_config.json) and prompts.jsonl.
int64_t write_inputs(const std::string& dir, const std::string& model_dir, const std::string& data) {
  const std::vector<std::string> prompts = make_prompts(kDataRows);
  const Tokenizer tok = make_tokenizer(prompts);
  const policy::ModelConfig config = make_config(tok);
  auto model = policy::create_model(config, /*seed=*/1);
  policy::save_pretrained(*model, model_dir);
  tok.save(model_dir + "/tokenizer.json");
  // AutoTokenizer reads eos/pad from here; tokenizer.json alone leaves them unset.
  const Json tok_config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                           {"eos_token", kEos},
                           {"pad_token", kEos},
                           {"model_max_length", config.max_position_embeddings}};
  std::ofstream(model_dir + "/tokenizer_config.json") << tok_config.dump(2) << "\n";
  std::ofstream jsonl(data);
  for (const std::string& p : prompts) jsonl << Json{{"prompt", p}}.dump() << "\n";
  if (!jsonl) throw Error("bench train: cannot write " + data + " in " + dir);
  return model->num_parameters();
}

}  // namespace

int bench_train(const BenchTrainArgs& a) {
  if (a.prompts < 1 || a.group < 2 || a.max_completion_length < 1 || a.steps < 1 || a.warmup < 0) {
    throw Error("bench train: need prompts >= 1, group >= 2 (GRPO), max completion length >= 1, steps >= 1, "
                "warmup >= 0");
  }
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  if (a.json) log::set_level(log::Level::Warn);
  char tmpl[] = "/tmp/r1kit_bench_train_XXXXXX";
  const char* made = mkdtemp(tmpl);
  if (made == nullptr) throw Error("bench train: cannot create a temporary directory");
  const std::string dir = made;
  const std::string model_dir = dir + "/model", data = dir + "/prompts.jsonl";
  Json result;
  try {
    const int64_t params = write_inputs(dir, model_dir, data);
    const int64_t n = a.prompts * a.group;
    if (!a.json) {
      fmt::print("bench train on cpu ({} threads): qwen3_moe D=64 L=2 H=4/Hkv=2 E=8 K=2 ({} params), "
                 "B={} prompts x G={} = {} completions/step, max_completion_length {}, stop at EOS, "
                 "temperature 1, beta 0, loss dapo, lr {}, {} warm-up + {} timed steps\n",
                 at::get_num_threads(), params, a.prompts, a.group, n, a.max_completion_length, a.learning_rate,
                 a.warmup, a.steps);
      std::fflush(stdout);
    }
    const Side ours = run_ours(model_dir, data, dir + "/run", a);
    if (!a.json) {
      fmt::print("r1kit  {:8.3f} s/step  (rollout {:.3f} s, train {:.3f} s; completion mean length {:.1f}, "
                 "reward mean {:.3f}; run {:.1f} s)\n",
                 ours.seconds_per_step, ours.extra["rollout_seconds"].get<double>(),
                 ours.extra["train_seconds"].get<double>(), ours.completion_mean_length, ours.reward_mean,
                 ours.wall_seconds);
      std::fflush(stdout);
    }
    result = {{"bench", "train"},
              {"device", "cpu"},
              {"threads", at::get_num_threads()},
              {"model", "qwen3_moe"},
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
              {"r1kit_reward_mean", ours.reward_mean}};
    if (!a.skip_peer) {
      const Side trl = run_trl(model_dir, data, dir, a);
      const double ratio = trl.seconds_per_step / ours.seconds_per_step;
      if (!a.json) {
        fmt::print("TRL    {:8.3f} s/step  (completion mean length {:.1f}, reward mean {:.3f}; run {:.1f} s)  "
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
    }
  } catch (...) {
    remove_tree(dir);
    throw;
  }
  remove_tree(dir);
  fmt::print("{}\n", result.dump());
  return 0;
}

void add_bench_train_command(CLI::App& bench) {
  auto a = std::make_shared<BenchTrainArgs>();
  CLI::App* cmd = bench.add_subcommand("train", "GRPO s/step vs TRL GRPOTrainer (tiny qwen3_moe, CPU)");
  cmd->add_option("--steps", a->steps, "timed steps (K)")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "untimed steps first")->capture_default_str();
  cmd->add_option("--prompts", a->prompts, "B prompts per step")->capture_default_str();
  cmd->add_option("--group", a->group, "G generations per prompt")->capture_default_str();
  cmd->add_option("--max-completion-length", a->max_completion_length)->capture_default_str();
  cmd->add_option("--learning-rate", a->learning_rate)->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads, both sides (0 = default)")->capture_default_str();
  cmd->add_flag("--no-peer", a->skip_peer, "r1kit only");
  cmd->add_flag("--json", a->json, "print only the JSON line");
  cmd->callback([a] { cli::exit_code() = bench_train(*a); });
}

}  // namespace r1kit::bench
