// `r1kit bench train`: seconds per GRPO step of r1kit's trainer (pipelines::grpo::run_grpo)
// vs TRL's GRPOTrainer (bench/peers/trl_grpo.py, the project's .venv; transformers generate,
// no vLLM) on the same work: one random-initialised qwen3_moe directory and BPE tokenizer
// written by r1kit and read by both, the same prompt JSONL, B prompts x G generations per
// step, one rollout batch per optimizer step (num_iterations 1), beta 0, loss_type dapo,
// temperature 1 with no top-k/top-p, the same AdamW settings, rewards "format" + "tag_count"
// (the same rules in Python). Both stop at EOS. Warm-up steps are run and not timed. Last
// line: one JSON object whose "ratio" is TRL s/step over r1kit s/step, with the memory of
// each side: r1kit's live-tensor and resident-set peaks over the timed steps
// (r1kit_peak_bytes, r1kit_peak_rss_bytes) and the TRL process's peak resident set
// (trl_peak_rss_bytes; trl_peak_bytes = torch.cuda.max_memory_allocated on CUDA). Ratios
// mean something only within one run on one machine. --shape qwen2-1.5b --device cuda --bf16
// --gradient-checkpointing is the GPU mode (8 prompts x G=8, 512-token completions on the
// command line).
#pragma once
#include <cstdint>

namespace r1kit::bench {

struct BenchTrainArgs {
  int64_t prompts = 4;                 // B prompts per step
  int64_t group = 4;                   // G generations per prompt
  int64_t max_completion_length = 32;  // new tokens per completion at most
  int64_t steps = 5;                   // timed steps (K)
  int64_t warmup = 1;                  // steps run first and not timed
  double learning_rate = 1e-4;         // AdamW, constant; tiny random models want ~1e-4
  int64_t threads = 1;                 // CPU threads for both sides (0 = LibTorch's default);
                                       // 1 by default for steady timings on a small shared box
  bool skip_peer = false;              // r1kit only (no Python)
  // The model: "tiny" (the qwen3_moe above) or "qwen2-1.5b" (random weights in Qwen2.5-1.5B's
  // shape: 28 layers, D 1536, 12 heads / 2 KV heads, intermediate 8960, vocab 151936, tied
  // embeddings), the GPU comparison with transformers' eager training that TRL runs without
  // vLLM.
  std::string shape = "tiny";
  std::string device = "cpu";           // cpu | cuda (both sides)
  bool bf16 = false;                    // r1kit: bf16 over fp32 masters; TRL: bf16 autocast
  bool gradient_checkpointing = false;  // both sides
  bool json = false;                    // print only the JSON line
};

// Returns the exit code.
int bench_train(const BenchTrainArgs& args);

}  // namespace r1kit::bench
