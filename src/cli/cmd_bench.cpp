// `r1kit bench reward|rollout|train [--json]`: side-by-side benchmarks against the tool a user
// would pick instead (bench/). Each prints JSON whose last line holds the ratio. The flags
// live here; the benchmarks in bench/ take plain args structs.
#include "bench/bench_reward.h"
#include "bench/bench_rollout.h"
#include "bench/bench_train.h"
#include "src/cli/commands.h"

namespace r1kit::cli {

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks against peers (JSON output)");
  bench->require_subcommand(1);

  auto json = std::make_shared<bool>(false);
  CLI::App* reward = bench->add_subcommand("reward", "math checks/s vs Math-Verify; sandboxed code executions/s");
  reward->add_flag("--json", *json, "print only the JSON line");
  reward->callback([json] { exit_code() = bench::bench_reward(*json); });

  auto r = std::make_shared<bench::BenchRolloutArgs>();
  CLI::App* roll =
      bench->add_subcommand("rollout", "generation tok/s vs transformers generate (qwen3_moe, deepseek_v3)");
  roll->add_option("--device", r->device, "cpu | cuda | auto")->capture_default_str();
  roll->add_option("--prompts", r->prompts, "B prompts")->capture_default_str();
  roll->add_option("--group", r->group, "G samples per prompt")->capture_default_str();
  roll->add_option("--rows", r->rows, "B*G rows (sets B = rows / G)");
  roll->add_option("--prompt-tokens,--prompt-len", r->prompt_tokens)->capture_default_str();
  roll->add_option("--new-tokens", r->new_tokens)->capture_default_str();
  roll->add_option("--max-kv-tokens", r->max_kv_tokens,
                   "also run r1kit with its KV pool at this many tokens (e.g. a quarter of what the rows need)");
  roll->add_option("--models", r->models, "qwen3_moe, deepseek_v3, qwen3_moe_106m, qwen3_moe_0.9b, deepseek_v3_0.9b")
      ->capture_default_str();
  roll->add_option("--threads", r->threads, "CPU threads, both sides (0 = default)")->capture_default_str();
  roll->add_flag("--no-peer", r->skip_peer, "r1kit only");
  roll->add_flag("--json", r->json, "print only the JSON line");
  roll->callback([r] { exit_code() = bench::bench_rollout(*r); });

  auto t = std::make_shared<bench::BenchTrainArgs>();
  CLI::App* train = bench->add_subcommand("train", "GRPO s/step vs TRL GRPOTrainer (tiny qwen3_moe, CPU)");
  train->add_option("--steps", t->steps, "timed steps (K)")->capture_default_str();
  train->add_option("--warmup", t->warmup, "untimed steps first")->capture_default_str();
  train->add_option("--prompts", t->prompts, "B prompts per step")->capture_default_str();
  train->add_option("--group", t->group, "G generations per prompt")->capture_default_str();
  train->add_option("--max-completion-length", t->max_completion_length)->capture_default_str();
  train->add_option("--learning-rate", t->learning_rate)->capture_default_str();
  train->add_option("--threads", t->threads, "CPU threads, both sides (0 = default)")->capture_default_str();
  train->add_option("--shape", t->shape, "tiny (qwen3_moe) or qwen2-1.5b (Qwen2.5-1.5B's shape)")
      ->capture_default_str();
  train->add_option("--device", t->device, "cpu or cuda, both sides")->capture_default_str();
  train->add_flag("--bf16", t->bf16, "r1kit bf16 over fp32 masters; TRL bf16 autocast");
  train->add_flag("--gradient-checkpointing", t->gradient_checkpointing, "both sides");
  train->add_flag("--no-peer", t->skip_peer, "r1kit only");
  train->add_flag("--json", t->json, "print only the JSON line");
  train->callback([t] { exit_code() = bench::bench_train(*t); });
}

}  // namespace r1kit::cli
