// `r1kit demo [--out DIR]`: the smallest end-to-end run of what exists today, on a
// synthetic arithmetic task a CPU handles in about a minute:
//   1. generate task text (questions with <think>/<answer> worked solutions);
//   2. train a byte-level BPE tokenizer on it;
//   3. create a tiny deepseek_v3 policy (MLA + DeepSeekMoE) with that vocabulary;
//   4. next-token training (AdamW), with the aux-loss-free router-bias update after each step;
//   5. save it as a Hugging Face model directory, load it back, check identical logits;
//   6. greedy-complete a held-out question and score it with the math + format rewards.
// The full R1 recipe (GRPO, rejection sampling, distillation) replaces this once it lands.
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "policy/balancing.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"
#include "rewards/scorer.h"
#include "src/atomic_file.h"
#include "src/bpe_trainer.h"
#include "src/cli/commands.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::cli {
namespace {

struct DemoArgs {
  std::string out = "runs/demo";
  std::string device = "auto";
  int steps = 150;
  uint64_t seed = 1;
};

struct Problem {
  std::string question, solution, answer;
};

// "a+b*c" style problems whose worked solution a tiny model can learn to imitate.
Problem make_problem(std::mt19937& rng) {
  std::uniform_int_distribution<int> d(1, 9);
  const int a = d(rng), b = d(rng), c = d(rng);
  const int bc = b * c, ans = a + bc;
  Problem p;
  p.question = std::to_string(a) + "+" + std::to_string(b) + "*" + std::to_string(c) + "=";
  p.answer = std::to_string(ans);
  p.solution = "<think>" + std::to_string(b) + "*" + std::to_string(c) + "=" + std::to_string(bc) + " " +
               std::to_string(a) + "+" + std::to_string(bc) + "=" + p.answer + "</think> <answer>" + p.answer +
               "</answer>";
  return p;
}

std::vector<int32_t> greedy_complete(policy::CausalLM& model, std::vector<int32_t> ids, int max_new, int32_t stop) {
  at::NoGradGuard no_grad;
  const size_t prompt = ids.size();
  for (int i = 0; i < max_new; ++i) {
    const at::Tensor t = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
    const at::Tensor hidden = model.forward_hidden(t.to(model.lm_head_weight().device()));
    const int32_t next = model.logits(hidden.select(1, -1)).argmax(-1).item<int64_t>();
    ids.push_back(next);
    if (next == stop) break;
  }
  return {ids.begin() + prompt, ids.end()};
}

int run_demo(const DemoArgs& args) {
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  const DeviceChoice device = resolve_device(args.device);
  fs::create_directories(args.out);
  std::mt19937 rng(args.seed);

  // 1-2. Task text and its tokenizer.
  std::vector<std::string> texts;
  for (int i = 0; i < 3000; ++i) {
    const Problem p = make_problem(rng);
    texts.push_back(p.question + " " + p.solution + "<|endoftext|>");
  }
  BpeTrainerOptions tok_options;
  tok_options.vocab_size = 320;
  tok_options.special_tokens = {"<|endoftext|>", "<think>", "</think>", "<answer>", "</answer>"};
  const Tokenizer tokenizer = train_bpe(texts, tok_options);
  const int32_t eos = *tokenizer.token_to_id("<|endoftext|>");
  log::info("tokenizer: byte-level BPE, {} tokens", tokenizer.vocab_size());

  // 3. A tiny DeepSeek-V3-style policy.
  policy::ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = tokenizer.vocab_size();
  c.hidden_size = 96;
  c.intermediate_size = 192;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.q_lora_rank = 48;
  c.kv_lora_rank = 32;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 16;
  c.head_dim = 8;
  c.num_experts = 8;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 48;
  c.n_shared_experts = 1;
  c.scoring_func = "sigmoid";
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.n_group = 2;
  c.topk_group = 1;
  c.first_k_dense_replace = 1;
  c.max_position_embeddings = 256;
  c.eos_token_ids = {eos};
  auto model = policy::create_model(c, args.seed);
  model->to(device.device, device.dtype);
  log::info("policy: deepseek_v3 (MLA + {} routed experts, top-{}), {} parameters, {} active per token",
            c.num_experts, c.num_experts_per_tok, model->num_parameters(), model->num_active_parameters());

  // 4. Next-token training on packed text.
  std::vector<int64_t> stream;
  for (const auto& t : texts) {
    for (int32_t id : tokenizer.encode(t)) stream.push_back(id);
  }
  const int64_t B = 16, T = 48;
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  model->train();
  std::uniform_int_distribution<int64_t> start(0, static_cast<int64_t>(stream.size()) - T - 2);
  double first_loss = 0, loss_value = 0;
  for (int step = 1; step <= args.steps; ++step) {
    std::vector<int64_t> batch;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t s = start(rng);
      batch.insert(batch.end(), stream.begin() + s, stream.begin() + s + T + 1);
    }
    const at::Tensor seq = at::tensor(batch, at::kLong).view({B, T + 1}).to(device.device);
    const at::Tensor hidden = model->forward_hidden(seq.narrow(1, 0, T));                // [B, T, D]
    const auto lp = policy::token_logprobs(hidden, model->lm_head_weight(), seq.narrow(1, 1, T));
    const at::Tensor loss = -lp.logprobs.mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
    const auto balance = policy::update_router_biases(*model, c.bias_update_speed);
    loss_value = loss.item<double>();
    if (step == 1) first_loss = loss_value;
    if (step % 25 == 0 || step == 1) {
      log::info("step {:4d}  loss {:.3f}  expert load max/mean {:.2f}", step, loss_value,
                balance.max_over_mean.empty() ? 1.0 : balance.max_over_mean.back());
    }
  }
  model->eval();

  // 5. Out as a Hugging Face directory and back in.
  const std::string model_dir = (fs::path(args.out) / "model").string();
  policy::save_pretrained(*model, model_dir);
  tokenizer.save((fs::path(model_dir) / "tokenizer.json").string());
  auto reloaded = policy::load_pretrained(model_dir, device);
  const at::Tensor probe = at::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + 32), at::kLong)
                               .unsqueeze(0).to(device.device);
  at::NoGradGuard no_grad;
  const double diff = (model->forward(probe) - reloaded->forward(probe)).abs().max().item<double>();
  log::info("saved {} (config.json, model.safetensors, tokenizer.json); reload max |diff| = {}", model_dir, diff);

  // 6. Complete a fresh question and score it.
  std::mt19937 held_out(args.seed + 1000);
  const Problem p = make_problem(held_out);
  const std::vector<int32_t> completion_ids = greedy_complete(*reloaded, tokenizer.encode(p.question + " "), 40, eos);
  const std::string completion = tokenizer.decode(completion_ids, /*skip_special_tokens=*/true);
  const rewards::Scorer scorer = rewards::Scorer::from_spec("math:1,format:1");
  const Json row = {{"answer", p.answer}};
  rewards::RewardInput in;
  in.prompt = p.question;
  in.completion = completion;
  in.fields = &row;
  const rewards::RewardResult r = scorer.score(in);
  log::info("question {}  completion \"{}\"  reward {} ({})", p.question, completion, r.value.value_or(0), r.why);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Json summary = {{"device", to_string(device)},
                        {"params", model->num_parameters()},
                        {"active_params", model->num_active_parameters()},
                        {"loss_first", first_loss},
                        {"loss_last", loss_value},
                        {"reload_max_abs_diff", diff},
                        {"sample", {{"question", p.question}, {"completion", completion}, {"reward", r.value.value_or(0)}}},
                        {"seconds", seconds}};
  write_file_atomic((fs::path(args.out) / "summary.json").string(), summary.dump(2) + "\n");
  log::info("done in {:.1f}s: {}/summary.json", seconds, args.out);
  return diff == 0.0 && loss_value < first_loss ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand("demo", "end-to-end run of the toolkit on a synthetic task");
  cmd->add_option("--out", args->out, "run directory")->capture_default_str();
  cmd->add_option("--device", args->device, "auto | cpu | cuda[:i]")->capture_default_str();
  cmd->add_option("--steps", args->steps, "training steps")->capture_default_str();
  cmd->add_option("--seed", args->seed, "random seed")->capture_default_str();
  cmd->callback([args] { exit_code() = run_demo(*args); });
}

}  // namespace r1kit::cli
