// count_parameters (see parameter_count.h): the tensors of causal_lm.cpp, layers/*.cpp.
#include "policy/parameter_count.h"

#include <algorithm>

namespace r1kit::policy {
namespace {

// Adds one tensor of `n` elements to the running counts.
struct Counter {
  ParameterCounts& out;
  int64_t layer_total = 0;

  void tensor(int64_t n) {
    layer_total += n;
    out.largest_tensor = std::max(out.largest_tensor, n);
  }
  void linear(const std::string& name, int64_t in, int64_t out_features, bool bias) {
    tensor(in * out_features);
    if (bias) tensor(out_features);
    out.linears.push_back({name, in, out_features});
  }
  void mlp(const std::string& prefix, int64_t dim, int64_t hidden, bool bias) {
    linear(prefix + ".gate_proj", dim, hidden, bias);
    linear(prefix + ".up_proj", dim, hidden, bias);
    linear(prefix + ".down_proj", hidden, dim, bias);
  }
};

void attention(Counter& k, const ModelConfig& c, const std::string& p) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads;
  if (c.is_mla()) {
    if (c.q_lora_rank > 0) {
      k.linear(p + ".q_a_proj", D, c.q_lora_rank, c.qkv_bias);
      k.tensor(c.q_lora_rank);  // q_a_layernorm
      k.linear(p + ".q_b_proj", c.q_lora_rank, H * c.qk_head_dim(), false);
    } else {
      k.linear(p + ".q_proj", D, H * c.qk_head_dim(), false);
    }
    k.linear(p + ".kv_a_proj_with_mqa", D, c.kv_lora_rank + c.qk_rope_head_dim, c.qkv_bias);
    k.tensor(c.kv_lora_rank);  // kv_a_layernorm
    k.linear(p + ".kv_b_proj", c.kv_lora_rank, H * (c.qk_nope_head_dim + c.v_head_dim), false);
    k.linear(p + ".o_proj", H * c.v_head_dim, D, c.o_bias);
    return;
  }
  const int64_t Hkv = c.num_key_value_heads, Dh = c.head_dim;
  k.linear(p + ".q_proj", D, H * Dh, c.qkv_bias);
  k.linear(p + ".k_proj", D, Hkv * Dh, c.qkv_bias);
  k.linear(p + ".v_proj", D, Hkv * Dh, c.qkv_bias);
  k.linear(p + ".o_proj", H * Dh, D, c.o_bias);
  if (c.qk_norm) k.tensor(Dh), k.tensor(Dh);
}

}  // namespace

ParameterCounts count_parameters(const ModelConfig& c) {
  ParameterCounts out;
  const int64_t D = c.hidden_size, V = c.vocab_size;
  Counter outer{out};
  outer.tensor(V * D);                              // embed_tokens
  if (!c.tie_word_embeddings) outer.tensor(V * D);  // lm_head
  outer.tensor(D);                                  // final norm
  out.outer = outer.layer_total;
  out.total = out.active = out.outer;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    Counter k{out};
    k.tensor(D), k.tensor(D);  // input_layernorm, post_attention_layernorm
    attention(k, c, p + ".self_attn");
    int64_t inactive = 0;
    if (c.is_moe_layer(i)) {
      const int64_t E = c.num_experts, I = c.moe_intermediate_size;
      k.tensor(E * D);          // router
      k.tensor(E * 2 * I * D);  // experts.gate_up_proj
      k.tensor(E * D * I);      // experts.down_proj
      inactive = 3 * I * D * (E - c.num_experts_per_tok);
      if (c.n_shared_experts > 0) {
        k.mlp(p + ".mlp.shared_experts", D, I * c.n_shared_experts, false);
      } else if (c.shared_expert_intermediate_size > 0) {
        k.mlp(p + ".mlp.shared_expert", D, c.shared_expert_intermediate_size, false);
        k.linear(p + ".mlp.shared_expert_gate", D, 1, false);
      }
    } else {
      k.mlp(p + ".mlp", D, c.intermediate_size, c.mlp_bias);
    }
    out.layers.push_back(k.layer_total);
    out.total += k.layer_total;
    out.active += k.layer_total - inactive;
  }
  return out;
}

int64_t lora_parameter_count(const ParameterCounts& counts, const LoraOptions& o) {
  if (o.r <= 0) return 0;
  int64_t n = 0;
  for (const LinearShape& l : counts.linears) {
    if (lora_targets(l.name, o.target_modules)) n += o.r * (l.in + l.out);
  }
  return n;
}

}  // namespace r1kit::policy
