// The dense students: qwen2 (HF Qwen2ForCausalLM: q/k/v bias always on) and llama (HF
// LlamaForCausalLM: attention_bias on q/k/v/o, mlp_bias, llama3 RoPE scaling). Both are the
// shared GQA attention + SwiGLU MLP; they differ only in which projections carry a bias.
#include "policy/architecture.h"

namespace r1kit::policy {
namespace {

class Qwen2 final : public Architecture {
 public:
  void read_config(JsonFields& f, ModelConfig& c) const override {
    c.qkv_bias = true;  // Qwen2Attention hard-codes bias=True on q/k/v
  }
  void write_config(const ModelConfig& c, Json& j) const override { j["head_dim"] = c.head_dim; }
  std::string hf_class() const override { return "Qwen2ForCausalLM"; }
};

class Llama final : public Architecture {
 public:
  void read_config(JsonFields& f, ModelConfig& c) const override {
    bool bias = false;
    f.get("attention_bias", bias);
    c.qkv_bias = c.o_bias = bias;
    f.get("mlp_bias", c.mlp_bias);
  }
  void write_config(const ModelConfig& c, Json& j) const override {
    j["attention_bias"] = c.qkv_bias;
    j["mlp_bias"] = c.mlp_bias;
    j["head_dim"] = c.head_dim;
  }
  std::string hf_class() const override { return "LlamaForCausalLM"; }
};

const ArchitectureRegistration kQwen2("qwen2", std::make_unique<Qwen2>());
const ArchitectureRegistration kLlama("llama", std::make_unique<Llama>());

}  // namespace
}  // namespace r1kit::policy
