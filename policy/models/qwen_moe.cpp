// qwen3_moe (HF Qwen3MoeForCausalLM) and qwen2_moe (HF Qwen2MoeForCausalLM): GQA attention
// with softmax top-k routed experts on every `decoder_sparse_step`-th layer (except
// `mlp_only_layers`). qwen3_moe adds per-head q/k RMSNorm before RoPE and has no bias;
// qwen2_moe has q/k/v bias and one shared expert scaled by sigmoid(shared_expert_gate(x)).
// The two share this file because they differ only in those three config facts.
#include "policy/architecture.h"

namespace r1kit::policy {
namespace {

class QwenMoe final : public Architecture {
 public:
  explicit QwenMoe(bool qwen3) : qwen3_(qwen3) {}
  void read_config(JsonFields& f, ModelConfig& c) const override {
    f.get("num_experts", c.num_experts);        // Qwen's released configs
    f.get("num_local_experts", c.num_experts);  // transformers 5 writes this spelling
    f.get("num_experts_per_tok", c.num_experts_per_tok);
    f.get("moe_intermediate_size", c.moe_intermediate_size);
    f.get("norm_topk_prob", c.norm_topk_prob);
    f.get("decoder_sparse_step", c.decoder_sparse_step);
    f.get("mlp_only_layers", c.mlp_only_layers);
    c.scoring_func = "softmax";
    if (qwen3_) {
      c.qk_norm = true;
      bool bias = false;
      f.get("attention_bias", bias);
      c.qkv_bias = c.o_bias = bias;
    } else {
      c.qkv_bias = true;
      f.get("qkv_bias", c.qkv_bias);
      f.get("shared_expert_intermediate_size", c.shared_expert_intermediate_size);
    }
  }
  void write_config(const ModelConfig& c, Json& j) const override {
    j["num_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["decoder_sparse_step"] = c.decoder_sparse_step;
    j["mlp_only_layers"] = c.mlp_only_layers;
    j["head_dim"] = c.head_dim;
    if (qwen3_) {
      j["attention_bias"] = c.qkv_bias;
    } else {
      j["qkv_bias"] = c.qkv_bias;
      j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
    }
  }
  std::string hf_class() const override { return qwen3_ ? "Qwen3MoeForCausalLM" : "Qwen2MoeForCausalLM"; }

 private:
  bool qwen3_;
};

const ArchitectureRegistration kQwen3("qwen3_moe", std::make_unique<QwenMoe>(/*qwen3=*/true));
const ArchitectureRegistration kQwen2("qwen2_moe", std::make_unique<QwenMoe>(/*qwen3=*/false));

}  // namespace
}  // namespace r1kit::policy
