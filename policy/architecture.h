// The model-architecture plug-in point: one Architecture per HF `model_type`, registered by
// one line beside its implementation (policy/models/<type>.cpp). An architecture only maps
// its config.json keys to ModelConfig and back: the layers are shared (policy/layers/) and
// the one transformer (policy/causal_lm) assembles them from ModelConfig, so adding a model
// never copies a model. Tensor names need no mapping: module names ARE the HF names.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "policy/config.h"

namespace r1kit::policy {

class Architecture {
 public:
  virtual ~Architecture() = default;
  // Reads the keys specific to this model_type (the common ones are already read) and sets
  // the fields whose meaning is fixed by the architecture (e.g. qwen3's q/k norm).
  virtual void read_config(JsonFields& f, ModelConfig& c) const = 0;
  // Writes the architecture's own keys into an HF config.json object.
  virtual void write_config(const ModelConfig& c, Json& j) const = 0;
  // The HF class name written to "architectures" (e.g. "Qwen2ForCausalLM").
  virtual std::string hf_class() const = 0;
};

// Registry. register_architecture refuses duplicates; find_architecture's error lists the
// known names.
void register_architecture(const std::string& model_type, std::unique_ptr<Architecture> arch);
const Architecture& find_architecture(const std::string& model_type);
std::vector<std::string> architecture_names();

// One-line registration at namespace scope in the architecture's .cpp file.
struct ArchitectureRegistration {
  ArchitectureRegistration(const std::string& model_type, std::unique_ptr<Architecture> arch) {
    register_architecture(model_type, std::move(arch));
  }
};

}  // namespace r1kit::policy
