// deepseek_v3 (HF DeepseekV3ForCausalLM): MLA attention (optional q-LoRA, compressed KV
// latent + decoupled RoPE key, interleaved RoPE, YaRN with mscale_all_dim softmax scaling)
// and DeepSeekMoE (shared experts + sigmoid-scored routed experts, e_score_correction_bias,
// group-limited top-k, routed_scaling_factor), dense for the first `first_k_dense_replace`
// layers. Not implemented: the MTP module (model.layers.{L}.* with L = num_hidden_layers is
// skipped on load, as transformers does).
#include "policy/architecture.h"

namespace r1kit::policy {
namespace {

class DeepseekV3 final : public Architecture {
 public:
  void read_config(JsonFields& f, ModelConfig& c) const override {
    c.q_lora_rank = 0;
    f.get("q_lora_rank", c.q_lora_rank);
    f.require("kv_lora_rank", c.kv_lora_rank);
    f.require("qk_nope_head_dim", c.qk_nope_head_dim);
    f.require("qk_rope_head_dim", c.qk_rope_head_dim);
    f.require("v_head_dim", c.v_head_dim);
    f.get("rope_interleave", c.rope_interleave);
    bool bias = false;
    f.get("attention_bias", bias);
    c.qkv_bias = c.o_bias = bias;
    c.head_dim = c.qk_rope_head_dim;  // HF sets head_dim = qk_rope_head_dim (RoPE and YaRN use it)
    f.ignore("head_dim");
    f.get("n_routed_experts", c.num_experts);
    f.get("num_experts_per_tok", c.num_experts_per_tok);
    f.get("moe_intermediate_size", c.moe_intermediate_size);
    f.get("n_shared_experts", c.n_shared_experts);
    c.norm_topk_prob = true;
    f.get("norm_topk_prob", c.norm_topk_prob);
    f.get("routed_scaling_factor", c.routed_scaling_factor);
    f.get("n_group", c.n_group);
    f.get("topk_group", c.topk_group);
    f.get("first_k_dense_replace", c.first_k_dense_replace);
    c.scoring_func = "sigmoid";
  }
  void write_config(const ModelConfig& c, Json& j) const override {
    if (c.q_lora_rank > 0) {
      j["q_lora_rank"] = c.q_lora_rank;
    } else {
      j["q_lora_rank"] = nullptr;  // HF: None means a plain q_proj
    }
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["qk_nope_head_dim"] = c.qk_nope_head_dim;
    j["qk_rope_head_dim"] = c.qk_rope_head_dim;
    j["v_head_dim"] = c.v_head_dim;
    j["rope_interleave"] = c.rope_interleave;
    j["attention_bias"] = c.qkv_bias;
    j["n_routed_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["n_shared_experts"] = c.n_shared_experts;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["routed_scaling_factor"] = c.routed_scaling_factor;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
    j["first_k_dense_replace"] = c.first_k_dense_replace;
  }
  std::string hf_class() const override { return "DeepseekV3ForCausalLM"; }
};

const ArchitectureRegistration kRegistration("deepseek_v3", std::make_unique<DeepseekV3>());

}  // namespace
}  // namespace r1kit::policy
