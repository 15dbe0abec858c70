// LoRA adapters (Hu et al. 2021) on a policy's Linear layers, in PEFT's format: y = x W^T +
// (alpha / r) * dropout(x) A^T B^T, A [r, in] Kaiming-uniform, B [out, r] zero, so a fresh
// adapter changes nothing. The base weights are frozen (no gradients, no optimizer state);
// the adapters are the trainable parameters (policy::trainable_parameters). With the adapters
// switched off (AdaptersDisabled) the model is exactly its base: GRPO's KL reference without a
// second copy. The adapters are applied in every forward (the CPU decode path included), never
// merged until merge_lora.
// On disk: PEFT's adapter directory, adapter_config.json + adapter_model.safetensors with
// tensor names "base_model.model.<module>.lora_A.weight" / "lora_B.weight", which
// peft.PeftModel.from_pretrained loads onto the transformers base.
// Not done: adapters on the MoE routed experts (fused tensors, not Linear layers), DoRA,
// rsLoRA (refused when an adapter asks for it), per-module ranks (rank_pattern).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::policy {

class CausalLM;

struct LoraOptions {
  int64_t r = 0;       // rank; 0 = no adapters (full fine-tuning)
  double alpha = 16;   // scale alpha / r
  double dropout = 0;  // on the adapter's input, in training mode
  // PEFT's names: the last component of a module's name ("q_proj", "down_proj"), or
  // "all-linear": every Linear layer outside the MoE blocks (the output head is not one;
  // routed and shared experts and the router stay frozen).
  std::vector<std::string> target_modules = {"all-linear"};
  // Read from an adapter_config.json: its rank_pattern / alpha_pattern keys, which must match
  // none of the adapter's modules.
  std::vector<std::string> ignored_patterns;
};

// Adds fresh adapters (seeded) to the matching Linear layers and freezes every base weight.
// Returns the adapted modules' names; an error names a target that matches nothing.
std::vector<std::string> add_lora(CausalLM& model, const LoraOptions& options, uint64_t seed);
// Whether the Linear module `name` (HF name) is one of `targets` (PEFT's matching; all-linear
// leaves the MoE blocks out).
bool lora_targets(const std::string& name, const std::vector<std::string>& targets);
bool has_lora(const CausalLM& model);
// The adapters' options (r, alpha, dropout, the adapted module names).
LoraOptions lora_options(const CausalLM& model);

// What an optimizer trains: the adapters' A and B when the model has adapters, else every
// parameter. Stable order (module order, A before B).
std::vector<at::Tensor> trainable_parameters(const CausalLM& model);
int64_t num_trainable_parameters(const CausalLM& model);

// While alive, every adapter of `model` is off: the model computes its base exactly.
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(CausalLM& model);
  ~AdaptersDisabled();
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  CausalLM& model_;
};

// W += (alpha / r) B A in every adapted layer, then the adapters are removed and the base
// weights trainable again: a plain model.
void merge_lora(CausalLM& model);

// PEFT's adapter directory: adapter_config.json (base_model_name_or_path = `base_model`) and
// adapter_model.safetensors (fp32), each written atomically.
void save_peft_adapter(const CausalLM& model, const std::string& dir, const std::string& base_model);
// Adds the adapters of a PEFT directory to `model` (which must have none) with their values;
// base frozen. Errors name the file and the tensor or key.
void load_peft_adapter(CausalLM& model, const std::string& dir);
// Copies the values of a PEFT directory's tensors into the adapters `model` already has
// (the same modules and rank): a checkpoint's adapters on resume.
void load_peft_adapter_values(CausalLM& model, const std::string& dir);
// True when `dir` is a PEFT adapter directory (adapter_config.json).
bool is_peft_adapter_dir(const std::string& dir);
// The base model an adapter directory names (relative paths resolved against `dir`).
std::string peft_base_model(const std::string& dir);

}  // namespace r1kit::policy
