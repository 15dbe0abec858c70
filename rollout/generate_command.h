// `r1kit generate`: sample completions of text prompts from a Hugging Face model directory
// (weights + tokenizer.json) with rollout::Engine, printed as text or one JSON object per
// completion. Prompts are used as given (no chat template).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace r1kit::rollout {

struct GenerateCommandArgs {
  std::string model;                     // HF model directory (config.json, safetensors, tokenizer.json)
  std::vector<std::string> prompts;      // one or more prompt texts
  int64_t samples = 1;                   // completions per prompt (G)
  double temperature = 1.0;              // 0 = greedy
  double top_p = 1.0;                    // 1 = off
  int64_t top_k = 0;                     // 0 = off
  double min_p = 0.0;                    // 0 = off
  double repetition_penalty = 1.0;       // 1 = off
  int64_t max_new_tokens = 256;
  std::vector<std::string> stop;         // stop strings
  uint64_t seed = 0;
  std::string device = "auto";           // auto | cpu | cuda[:i]
  std::string dtype = "auto";            // auto | float32 | bfloat16
  int64_t max_batch_rows = 64;           // continuous-batching slots
  int64_t threads = 0;                   // CPU threads (0 = LibTorch's default)
  bool json = false;                     // one JSON object per completion
};

// Returns the exit code; bad input throws r1kit::Error.
int run_generate_command(const GenerateCommandArgs& args);

}  // namespace r1kit::rollout
