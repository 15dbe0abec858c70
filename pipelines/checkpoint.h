// Training checkpoints: RUN/checkpoints/<stage>/step-N/ holding the model as an HF directory
// (config.json, model.safetensors with the router biases, tokenizer.json), optimizer.pt
// (AdamW moments and step counts) and trainer_state.json (step, data position, seed, the
// stage's own fields). Written into step-N.tmp and renamed when complete, so a crash during a
// save leaves the previous checkpoint usable and latest_checkpoint() never returns a partial
// one. RNG state is not stored: every random draw in r1kit's trainers is keyed by
// (seed, step, row), so the step alone restores it.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "policy/pretrained.h"
#include "src/config.h"

namespace torch::optim {
class Optimizer;
}

namespace r1kit {
class Tokenizer;
class DistributedContext;
}  // namespace r1kit

namespace r1kit::policy {
class CausalLM;
}

namespace r1kit::pipelines {

struct TrainerState {
  int64_t step = 0;           // optimizer-step batches completed
  int64_t data_position = 0;  // prompts (or examples) consumed from the shuffled stream
  Json extra = Json::object();
};

// A Hugging Face model directory that transformers, TRL, vLLM and PEFT load unchanged: the
// weights, config.json, generation_config.json (every eos id), tokenizer.json,
// tokenizer_config.json and special_tokens_map.json (src/hf_tokenizer_files.h). `weights`
// says how the weights go on disk (dtype, FP8); a LoRA adapter is written as it is held.
void save_model_directory(const policy::CausalLM& model, const Tokenizer& tokenizer, const std::string& dir,
                          const policy::SaveOptions& weights = {});

// Writes root/step-<state.step>/ atomically, with every file's size and checksum in its
// trainer_state.json; keeps the newest `keep` checkpoints. A write that fails (a full disk,
// EFBIG, EIO) throws an r1kit::Error naming the file and the reason after removing the
// half-written step-N.tmp; the previous checkpoints are untouched.
// `reference` (GRPO with beta > 0) is saved under reference/ when given.
// `optimizer_shards` > 0 (ZeRO, pipelines/zero.h): the optimizer states are that many files
// optimizer-rank<r>.pt that every rank already wrote into root/step-N.tmp/ (see
// save_checkpoint_synced); `optimizer` is then not written here.
std::string save_checkpoint(const std::string& root, const policy::CausalLM& model, const Tokenizer& tokenizer,
                            const torch::optim::Optimizer& optimizer, const TrainerState& state, int64_t keep,
                            const policy::CausalLM* reference = nullptr, int optimizer_shards = 0);
// The newest complete checkpoint under root whose files all match the sizes and checksums in
// its trainer_state.json; a damaged or truncated newer one is skipped with a warning.
std::optional<std::string> latest_checkpoint(const std::string& root);
// Loads weights (into `model`), optimizer state and trainer state from a checkpoint dir.
// `optimizer_shards` > 0: this rank's file of a checkpoint sharded over that many ranks; a
// checkpoint saved with other sharding (another world size, or zero_stage 0 vs >= 1) is an
// r1kit::Error naming both.
TrainerState load_checkpoint(const std::string& dir, policy::CausalLM& model, torch::optim::Optimizer& optimizer,
                             policy::CausalLM* reference = nullptr, int optimizer_shards = 0, int rank = 0);

// The same steps for data-parallel trainers: every rank calls them, rank 0 alone writes (the
// run directory is shared), and nobody goes on before the files are in place.
// The checkpoint every rank resumes from: rank 0's newest complete one under root, if any.
std::optional<std::string> agreed_latest_checkpoint(const std::string& root, DistributedContext& dist);
// save_checkpoint on rank 0, then a barrier: no rank runs ahead of a checkpoint it may resume from.
// `sharded_optimizer` (ZeRO): every rank first writes its optimizer-rank<r>.pt.
void save_checkpoint_synced(DistributedContext& dist, const std::string& root, const policy::CausalLM& model,
                            const Tokenizer& tokenizer, const torch::optim::Optimizer& optimizer,
                            const TrainerState& state, int64_t keep, const policy::CausalLM* reference = nullptr,
                            bool sharded_optimizer = false);
// A stage's final model and tokenizer into `dir` on rank 0, then a barrier (the next stage
// may load it on any rank).
void save_final_model(DistributedContext& dist, const policy::CausalLM& model, const Tokenizer& tokenizer,
                      const std::string& dir, const policy::SaveOptions& weights = {});
// Parameters and buffers (the router biases): what data-parallel replicas must agree on.
std::vector<at::Tensor> replica_tensors(const policy::CausalLM& model);

}  // namespace r1kit::pipelines
