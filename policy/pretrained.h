// Hugging Face model directories in and out: config.json, model.safetensors (or shards +
// index), generation_config.json. Module names are the HF tensor names, so the only
// mapping is for experts, which r1kit holds fused (transformers 5 runtime layout):
//  - in: `mlp.experts.gate_up_proj` [E, 2I, D] / `mlp.experts.down_proj` [E, D, I] as they
//    are, or per-expert `mlp.experts.{e}.{gate,up,down}_proj.weight` stacked;
//  - out: per-expert by default (what save_pretrained writes and vLLM reads), fused on request.
// FP8 checkpoints (DeepSeek-V3 release: F8_E4M3 weight + `weight_scale_inv` per 128x128
// block) are dequantised on load, and written with SaveOptions::fp8 (policy/fp8.h). The MTP
// layer (index num_hidden_layers) is skipped, as in transformers. The tokenizer is not handled
// here (src/tokenizer).
#pragma once
#include <memory>
#include <string>

#include "policy/causal_lm.h"
#include "src/device.h"

namespace r1kit::policy {

struct SaveOptions {
  bool fused_experts = false;     // write transformers-5 fused expert tensors
  std::string dtype = "float32";  // float32 | bfloat16 on disk
  // DeepSeek-V3's released FP8 layout (policy/fp8.h): Linear weights as e4m3 blocks +
  // weight_scale_inv, quantization_config in config.json; the rest in `dtype`.
  bool fp8 = false;
};

// A model with fresh N(0, 0.02) weights (HF's initializer_range), seeded.
std::shared_ptr<CausalLM> create_model(const ModelConfig& config, uint64_t seed);
// `dir` is an HF model directory, or a PEFT adapter directory (adapter_config.json, no
// config.json): then its base_model_name_or_path with the adapters on (policy/lora.h).
std::shared_ptr<CausalLM> load_pretrained(const std::string& dir, const DeviceChoice& device);
// Copies the directory's tensors into an existing model (shapes checked, names reported).
void load_weights(CausalLM& model, const std::string& dir);
// A second model with the same config, device, dtype and weights (e.g. GRPO's reference).
std::shared_ptr<CausalLM> copy_model(const CausalLM& model);
// Copies `from`'s weights and buffers into `to` (same config).
void copy_weights(const CausalLM& from, CausalLM& to);
void save_pretrained(const CausalLM& model, const std::string& dir, const SaveOptions& options = {});

}  // namespace r1kit::policy
