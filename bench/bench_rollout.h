// `r1kit bench rollout`: generation tokens/s of rollout::Engine vs transformers' generate
// (bench/peers/transformers_generate.py, the project's .venv) on the same random-initialised
// model directory (written by r1kit's save_pretrained, read by both) and the same work:
// B prompts x G samples, equal prompt lengths, EOS ignored so both sides make exactly
// B*G*new_tokens tokens, multinomial sampling at temperature 1, no top-k/top-p.
// Runs a qwen3_moe (GQA) and a deepseek_v3 (MLA) model (--models: also the 106M CPU shape and
// the 0.9B GPU anchors), with r1kit's share of the memory-bandwidth bound, and reports KV-cache bytes per token
// of MLA vs an MHA model with the same heads and head sizes, the KV pool's size and peak use,
// and with --max-kv-tokens r1kit again under that pool (preemptions, tokens/s vs unconstrained).
// Last line: one JSON object whose "ratio" is r1kit tok/s over transformers tok/s (qwen3_moe).
// Ratios mean something only within one run on one machine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace r1kit::bench {

struct BenchRolloutArgs {
  std::string device = "cpu";  // cpu | cuda | auto (both sides use it; bf16 on CUDA)
  int64_t prompts = 16;        // B
  int64_t group = 8;           // G
  int64_t rows = 0;            // B*G when set: B = rows / G
  int64_t prompt_tokens = 32;  // P, the same for every prompt
  int64_t new_tokens = 128;    // tokens generated per row
  // When set, r1kit runs a second time with its paged pool at this many tokens (e.g. a
  // quarter of rows x (P + new)), and the JSON gives both tokens/s and their ratio.
  int64_t max_kv_tokens = 0;
  std::vector<std::string> models = {"qwen3_moe", "deepseek_v3"};
  int64_t threads = 1;     // CPU threads for both sides (0 = LibTorch's default). 1 by
                           // default: on a small shared box, OpenMP workers spin-waiting
                           // for a busy core make multi-threaded timings noise.
  bool skip_peer = false;  // r1kit only (no Python)
  bool json = false;       // print only the JSON line
};

// Returns the exit code.
int bench_rollout(const BenchRolloutArgs& args);

}  // namespace r1kit::bench
