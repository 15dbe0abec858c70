// Training checkpoints: RUN/checkpoints/<stage>/step-N/ holding the model as an HF directory
// (config.json, model.safetensors with the router biases, tokenizer.json), optimizer.pt
// (AdamW moments and step counts) and trainer_state.json (step, data position, seed, the
// stage's own fields). Written into step-N.tmp and renamed when complete, so a crash during a
// save leaves the previous checkpoint usable and latest_checkpoint() never returns a partial
// one. RNG state is not stored: every random draw in r1kit's trainers is keyed by
// (seed, step, row), so the step alone restores it.
#pragma once
#include <optional>
#include <string>

#include "src/config.h"

namespace torch::optim {
class Optimizer;
}

namespace r1kit {
class Tokenizer;
}

namespace r1kit::policy {
class CausalLM;
}

namespace r1kit::pipelines {

struct TrainerState {
  int64_t step = 0;           // optimizer-step batches completed
  int64_t data_position = 0;  // prompts (or examples) consumed from the shuffled stream
  Json extra = Json::object();
};

// Writes root/step-<state.step>/ atomically; keeps the newest `keep` checkpoints.
// `reference` (GRPO with beta > 0) is saved under reference/ when given.
std::string save_checkpoint(const std::string& root, const policy::CausalLM& model, const Tokenizer& tokenizer,
                            const torch::optim::Optimizer& optimizer, const TrainerState& state, int64_t keep,
                            const policy::CausalLM* reference = nullptr);
// The newest complete checkpoint under root, if any.
std::optional<std::string> latest_checkpoint(const std::string& root);
// Loads weights (into `model`), optimizer state and trainer state from a checkpoint dir.
TrainerState load_checkpoint(const std::string& dir, policy::CausalLM& model, torch::optim::Optimizer& optimizer,
                             policy::CausalLM* reference = nullptr);

}  // namespace r1kit::pipelines
