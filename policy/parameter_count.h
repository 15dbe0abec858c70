// A model's parameters counted from its config alone, with no weight allocated: what `r1kit
// plan` sizes a 7B model by on a laptop. Mirrors the modules policy::CausalLM builds (tested
// equal to CausalLM::num_parameters / num_active_parameters and to the LoRA adapters add_lora
// makes, for every architecture).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/lora.h"

namespace r1kit::policy {

struct LinearShape {
  std::string name;  // HF module name, e.g. model.layers.3.self_attn.q_proj
  int64_t in = 0, out = 0;
};

struct ParameterCounts {
  int64_t total = 0;
  int64_t active = 0;                // routed experts count K of E (DeepSeek's "active")
  int64_t outer = 0;                 // embeddings, final norm, lm_head: used outside the layers
  std::vector<int64_t> layers;       // per decoder layer
  int64_t largest_tensor = 0;        // elements of the largest single tensor
  std::vector<LinearShape> linears;  // every Linear module (LoRA's candidates)
};

ParameterCounts count_parameters(const ModelConfig& c);
// Elements of the LoRA adapters add_lora(o) would add (A [r, in] and B [out, r] per target).
int64_t lora_parameter_count(const ParameterCounts& counts, const LoraOptions& o);

}  // namespace r1kit::policy
