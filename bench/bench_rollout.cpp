// bench rollout (see bench_rollout.h). The models are small random ones so the benchmark
// runs in minutes on a 2-core CPU; per-step overheads (Python, cache growth) therefore
// weigh more than they would on a large model, which is what a rollout engine must remove.
// Where the time goes (LibTorch profiler, qwen3_moe, 1 thread, 128 rows, AVX2 CPU): the
// policy/cpu kernels take ~90% of a decode step: the routed experts 39% (packed GEMMs at
// 60-80 GFLOP/s, weights streamed from L3), the dense linears and lm_head 32%, attention
// over the cache 18% (bound by reading the cache from DRAM), the rest a few dozen small
// ops (routing top-k, views). Before those kernels, SDPA, MKL's per-call packing and ~300
// small ATen ops per step made the same work 2x slower. Both sides run with the same
// thread count (--threads, default 1, passed to the peer).
#include "bench/bench_rollout.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "bench/peer_runner.h"
#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "rollout/engine.h"
#include "rollout/kv_cache.h"
#include "src/error.h"

namespace r1kit::bench {
namespace {

// The models --models names: qwen3_moe and deepseek_v3 (small, so the default run takes a
// minute on 2 cores), qwen3_moe_106m (the real-size CPU shape) and the GPU anchors
// qwen3_moe_0.9b / deepseek_v3_0.9b (the configs issue 15 measured transformers on). window:
// prompt + new tokens, so that long-completion runs fit the model's positions.
const std::vector<std::string> kBenchModels = {"qwen3_moe", "deepseek_v3", "qwen3_moe_106m", "qwen3_moe_0.9b",
                                               "deepseek_v3_0.9b"};

policy::ModelConfig bench_config(const std::string& name, int64_t window) {
  policy::ModelConfig c;
  c.model_type = name.rfind("deepseek_v3", 0) == 0 ? "deepseek_v3" : "qwen3_moe";
  c.vocab_size = 4096;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 32;
  c.max_position_embeddings = std::max<int64_t>(1024, window);
  c.num_experts = 16;
  c.num_experts_per_tok = 4;
  c.moe_intermediate_size = 128;
  c.eos_token_ids = {1};
  c.bos_token_id = 0;
  if (c.model_type == "qwen3_moe") {
    c.qk_norm = true;
    c.norm_topk_prob = true;
  } else {  // deepseek_v3: MLA with the V3 proportions scaled down
    c.q_lora_rank = 96;
    c.kv_lora_rank = 64;
    c.qk_nope_head_dim = 32;
    c.qk_rope_head_dim = 16;
    c.v_head_dim = 32;
    c.head_dim = 16;
    c.num_key_value_heads = c.num_attention_heads;
    c.scoring_func = "sigmoid";
    c.norm_topk_prob = true;
    c.routed_scaling_factor = 2.5;
    c.n_shared_experts = 1;
    c.n_group = 4;
    c.topk_group = 2;
    c.first_k_dense_replace = 1;
    c.rope.theta = 10000.0;
  }
  if (name == "qwen3_moe_106m") {
    // 106M parameters, 18M active per token. At 32 rows every expert is read each step, so a
    // decode step streams ~425 MB of fp32 weights.
    c.hidden_size = 512;
    c.num_hidden_layers = 8;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.num_experts = 16;
    c.num_experts_per_tok = 2;
    c.moe_intermediate_size = 512;
    c.intermediate_size = 1024;
  } else if (name.size() > 5 && name.ends_with("_0.9b")) {
    // ~0.9B parameters: vocab 32000, hidden 1024, 16 layers, 16 heads, 32 experts top-4 of 512.
    c.vocab_size = 32000;
    c.hidden_size = 1024;
    c.num_hidden_layers = 16;
    c.num_attention_heads = 16;
    c.num_experts = 32;
    c.num_experts_per_tok = 4;
    c.moe_intermediate_size = 512;
    c.intermediate_size = 2560;  // deepseek_v3's first (dense) layer: (4 routed + 1 shared) x 512
    if (c.model_type == "qwen3_moe") {
      c.num_key_value_heads = 4;
      c.head_dim = 64;
    } else {  // kv_lora_rank 256, q_lora_rank 512, rope 32, nope 64, v 64, 1 shared expert
      c.num_key_value_heads = 16;
      c.kv_lora_rank = 256;
      c.q_lora_rank = 512;
      c.qk_rope_head_dim = 32;
      c.qk_nope_head_dim = 64;
      c.v_head_dim = 64;
      c.head_dim = 32;
    }
  }
  return c;
}

// Read bandwidth of this device at the bench's thread count: the best of three sums over a
// 512 MiB buffer (larger than any cache), in bytes/s.
double read_bandwidth(const DeviceChoice& dev) {
  const at::Tensor buffer = at::ones({int64_t{128} << 20}, at::TensorOptions().dtype(at::kFloat).device(dev.device));
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double total = buffer.sum().item<double>();  // the .item() waits for the device
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (total > 0) best = std::max(best, static_cast<double>(buffer.nbytes()) / s);
  }
  return best;
}

// Decode's bandwidth bound: each step reads every dense weight once, of the routed experts
// (the [E, ..] parameters) the share that has tokens, expected under uniform routing
// 1 - (1 - k/E)^rows (all of them at a few dozen rows), and each row's cache up to its
// position (on average P + T/2); it makes `rows` tokens, so tokens/s = rows * bandwidth / bytes.
double bandwidth_bound_tokens_per_s(const policy::CausalLM& model, int64_t rows, int64_t prompt_tokens,
                                    int64_t new_tokens, int64_t kv_bytes_per_token, double bandwidth) {
  const policy::ModelConfig& c = model.config();
  const double touched =
      c.num_experts > 0
          ? 1.0 - std::pow(1.0 - static_cast<double>(c.num_experts_per_tok) / c.num_experts, static_cast<double>(rows))
          : 1.0;
  double weight_bytes = 0;
  for (const at::Tensor& p : model.parameters()) {
    const bool routed = p.dim() == 3 && p.size(0) == c.num_experts;
    weight_bytes += static_cast<double>(p.nbytes()) * (routed ? touched : 1.0);
  }
  const double kv_bytes = static_cast<double>(rows) * (static_cast<double>(prompt_tokens) + new_tokens / 2.0) *
                          static_cast<double>(kv_bytes_per_token);
  return static_cast<double>(rows) * bandwidth / (weight_bytes + kv_bytes);
}

struct Side {
  double tokens_per_s = 0;
  double seconds = 0;
  int64_t tokens = 0;
};

Side run_transformers(const std::string& model_dir, const std::string& prompts_file, const BenchRolloutArgs& a,
                      const DeviceChoice& dev) {
  const Json j = run_peer(
      {"bench/peers/transformers_generate.py",
       {"--model", model_dir, "--prompts", prompts_file, "--group", std::to_string(a.group), "--max-new-tokens",
        std::to_string(a.new_tokens), "--device", dev.device.is_cuda() ? "cuda" : "cpu", "--dtype",
        dev.dtype == at::kBFloat16 ? "bfloat16" : "float32", "--threads", std::to_string(at::get_num_threads())},
       {}});
  return {j.at("tokens_per_s").get<double>(), j.at("seconds").get<double>(), j.at("generated_tokens").get<int64_t>()};
}

Json bench_model(const std::string& type, const BenchRolloutArgs& a, const DeviceChoice& dev, const std::string& dir,
                 double bandwidth) {
  if (std::find(kBenchModels.begin(), kBenchModels.end(), type) == kBenchModels.end()) {
    throw Error(
        "bench rollout: --models takes qwen3_moe, deepseek_v3, qwen3_moe_106m, qwen3_moe_0.9b and "
        "deepseek_v3_0.9b, got '" +
        type + "'");
  }
  const policy::ModelConfig config = bench_config(type, a.prompt_tokens + a.new_tokens);
  const std::string model_dir = dir + "/" + type;
  policy::save_pretrained(*policy::create_model(config, /*seed=*/1), model_dir);
  auto model = policy::load_pretrained(model_dir, dev);

  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int32_t> pick(2, static_cast<int32_t>(config.vocab_size) - 1);
  std::vector<std::vector<int32_t>> prompts(a.prompts, std::vector<int32_t>(a.prompt_tokens));
  Json prompts_json = Json::array();
  for (auto& p : prompts) {
    for (auto& t : p) t = pick(rng);
    prompts_json.push_back(p);
  }
  const std::string prompts_file = model_dir + "/bench_prompts.json";
  std::ofstream(prompts_file) << prompts_json.dump();

  rollout::EngineOptions eo;
  eo.max_batch_rows = a.prompts * a.group;
  rollout::Engine engine(model, eo);
  rollout::SamplingOptions o;
  o.temperature = 1.0;
  o.ignore_eos = true;
  o.max_new_tokens = 8;
  engine.generate({prompts[0], prompts[1 % prompts.size()]}, a.group, o);  // warm-up, as the peer does
  o.max_new_tokens = a.new_tokens;
  const rollout::Rollouts r = engine.generate(prompts, a.group, o);
  const Side ours{static_cast<double>(r.generated_tokens) / r.seconds, r.seconds, r.generated_tokens};
  const auto block_bytes = static_cast<double>(r.cache.block_size * r.cache.bytes_per_token);

  Json j = {{"model", type},
            {"rows", a.prompts * a.group},
            {"prompt_tokens", a.prompt_tokens},
            {"new_tokens", a.new_tokens},
            {"r1kit_tokens_per_s", ours.tokens_per_s},
            {"r1kit_seconds", ours.seconds},
            {"kv_bytes_per_token", r.cache.bytes_per_token},
            {"kv_cache_bytes", r.cache.total_bytes},
            {"kv_peak_bytes", static_cast<int64_t>(r.cache.peak_blocks * block_bytes)}};
  int64_t params = 0;
  for (const at::Tensor& p : model->parameters()) params += p.numel();
  const double bound = bandwidth_bound_tokens_per_s(*model, a.prompts * a.group, a.prompt_tokens, a.new_tokens,
                                                    r.cache.bytes_per_token, bandwidth);
  j["parameters"] = params;
  j["bandwidth_bound_tokens_per_s"] = bound;
  j["bandwidth_share"] = ours.tokens_per_s / bound;
  if (!a.json) {
    fmt::print(
        "{:<12} r1kit        {:9.1f} tok/s  ({} tokens in {:.2f} s; {:.1f}M parameters; KV {} B/token, pool {:.1f} "
        "MiB, "
        "peak {:.1f} MiB; {:.0f}% of the bandwidth bound {:.0f} tok/s)\n",
        type, ours.tokens_per_s, ours.tokens, ours.seconds, static_cast<double>(params) / 1e6, r.cache.bytes_per_token,
        static_cast<double>(r.cache.total_bytes) / (1 << 20), r.cache.peak_blocks * block_bytes / (1 << 20),
        100.0 * ours.tokens_per_s / bound, bound);
    std::fflush(stdout);
  }
  if (a.max_kv_tokens > 0) {
    eo.max_kv_tokens = a.max_kv_tokens;
    const rollout::Rollouts q = rollout::Engine(model, eo).generate(prompts, a.group, o);
    const double tps = static_cast<double>(q.generated_tokens) / q.seconds;
    j["pool"] = {
        {"max_kv_tokens", a.max_kv_tokens},
        {"share_of_rows_need", static_cast<double>(a.max_kv_tokens) /
                                   static_cast<double>(a.prompts * a.group * (a.prompt_tokens + a.new_tokens))},
        {"kv_cache_bytes", q.cache.total_bytes},
        {"r1kit_tokens_per_s", tps},
        {"r1kit_seconds", q.seconds},
        {"over_unconstrained", tps / ours.tokens_per_s},
        {"preemptions", q.cache.preemptions},
        {"decode_steps", q.decode_steps},
        {"decode_steps_unconstrained", r.decode_steps},
        {"recomputed_tokens", q.cache.recomputed_tokens}};
    if (!a.json) {
      fmt::print(
          "{:<12} r1kit pool   {:9.1f} tok/s  ({} tokens in {:.2f} s; pool {:.1f} MiB, {} preemptions, {} "
          "positions recomputed, {} decode steps vs {})  {:.2f}x unconstrained\n",
          type, tps, q.generated_tokens, q.seconds, static_cast<double>(q.cache.total_bytes) / (1 << 20),
          q.cache.preemptions, q.cache.recomputed_tokens, q.decode_steps, r.decode_steps, tps / ours.tokens_per_s);
      std::fflush(stdout);
    }
  }
  if (!a.skip_peer) {
    const Side peer = run_transformers(model_dir, prompts_file, a, dev);
    j["transformers_tokens_per_s"] = peer.tokens_per_s;
    j["transformers_seconds"] = peer.seconds;
    j["ratio"] = ours.tokens_per_s / peer.tokens_per_s;
    if (!a.json) {
      fmt::print("{:<12} transformers {:9.1f} tok/s  ({} tokens in {:.2f} s)  ratio {:.2f}x\n", type, peer.tokens_per_s,
                 peer.tokens, peer.seconds, ours.tokens_per_s / peer.tokens_per_s);
    }
  }
  if (config.is_mla()) {
    // MHA with the same heads and head sizes caches k [H, Dn + Dr] and v [H, Dv] per token.
    const int64_t elem = static_cast<int64_t>(c10::elementSize(dev.dtype));
    const int64_t mha =
        config.num_hidden_layers * config.num_attention_heads * (config.qk_head_dim() + config.v_head_dim) * elem;
    j["kv_bytes_per_token_mha_same_heads"] = mha;
    j["kv_mha_over_mla"] = static_cast<double>(mha) / static_cast<double>(r.cache.bytes_per_token);
    if (!a.json) {
      fmt::print("{:<12} KV cache per token: MLA {} B (kv_lora_rank {} + rope {} per layer) vs MHA {} B ({}x)\n", type,
                 r.cache.bytes_per_token, config.kv_lora_rank, config.qk_rope_head_dim, mha,
                 static_cast<double>(mha) / static_cast<double>(r.cache.bytes_per_token));
    }
  }
  return j;
}

}  // namespace

int bench_rollout(const BenchRolloutArgs& args) {
  BenchRolloutArgs a = args;
  if (a.rows > 0) {
    if (a.group < 1 || a.rows % a.group != 0) throw Error("bench rollout: --rows must be a multiple of --group");
    a.prompts = a.rows / a.group;
  }
  if (a.prompts < 1 || a.group < 1 || a.prompt_tokens < 1 || a.new_tokens < 1 || a.max_kv_tokens < 0) {
    throw Error("bench rollout: prompts, group, prompt tokens and new tokens must be >= 1, max-kv-tokens >= 0");
  }
  const DeviceChoice dev = resolve_device(a.device);
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const ScratchDir dir("bench_rollout");  // the model directories and their prompts
  if (!a.json) {
    fmt::print("bench rollout on {} ({} threads): {} prompts x G={} , {} prompt + {} new tokens, temperature 1\n",
               to_string(dev), at::get_num_threads(), a.prompts, a.group, a.prompt_tokens, a.new_tokens);
  }
  const double bandwidth = read_bandwidth(dev);
  if (!a.json) fmt::print("read bandwidth {:.1f} GB/s (sum over 512 MiB)\n", bandwidth / 1e9);
  Json result = {{"bench", "rollout"}, {"device", to_string(dev)}, {"read_bandwidth_bytes_per_s", bandwidth}};
  for (const std::string& type : a.models) result[type] = bench_model(type, a, dev, dir.path(), bandwidth);
  if (result.contains("qwen3_moe") && result["qwen3_moe"].contains("ratio"))
    result["ratio"] = result["qwen3_moe"]["ratio"];
  if (result.contains("deepseek_v3")) {
    const Json& mla = result["deepseek_v3"];
    if (mla.contains("ratio")) result["ratio_mla"] = mla["ratio"];
    result["kv_bytes_per_token_mla"] = mla["kv_bytes_per_token"];
    result["kv_bytes_per_token_mha_same_heads"] = mla["kv_bytes_per_token_mha_same_heads"];
  }
  fmt::print("{}\n", result.dump());
  return 0;
}

}  // namespace r1kit::bench
