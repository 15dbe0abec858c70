// policy::ModelConfig: every architecture's hyper-parameters in one plain struct, read from
// and written to Hugging Face `config.json` keys (model_type deepseek_v3, qwen3_moe,
// qwen2_moe, qwen2, llama).
//
// Reading follows transformers 5.x: `rope_parameters` (v5) or `rope_theta` + `rope_scaling`
// (v4) are both understood. Keys that change the math but are not implemented
// (sliding windows, non-SiLU activations, ...) are errors naming the file and key; keys that
// do not change the math (use_cache, initializer_range, auto_map, ...) are kept verbatim in
// `hf_extra` and written back, so a checkpoint round-trips through r1kit unchanged.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::policy {

struct RopeConfig {
  std::string type = "default";       // default | yarn | llama3 | linear
  double theta = 10000.0;             // base wavelength
  double factor = 1.0;                // context extension factor (yarn, llama3, linear)
  int64_t original_max_position = 0;  // yarn / llama3: the pre-training context length
  double beta_fast = 32.0;            // yarn: extrapolation boundary of the ramp
  double beta_slow = 1.0;             // yarn: interpolation boundary of the ramp
  double mscale = 0.0;                // yarn: numerator of the attention factor (0 = unset)
  double mscale_all_dim = 0.0;        // yarn: denominator; DeepSeek also scales softmax by it
  double attention_factor = 0.0;      // yarn: explicit cos/sin scale (0 = derive)
  bool truncate = true;               // yarn: floor/ceil the correction range
  double low_freq_factor = 1.0;       // llama3
  double high_freq_factor = 4.0;      // llama3
};

struct ModelConfig {
  std::string model_type = "qwen2";  // deepseek_v3 | qwen3_moe | qwen2_moe | qwen2 | llama
  int64_t vocab_size = 32000;
  int64_t hidden_size = 256;         // D
  int64_t intermediate_size = 1024;  // dense MLP width
  int64_t num_hidden_layers = 2;     // L
  int64_t num_attention_heads = 4;   // H
  int64_t num_key_value_heads = 4;   // Hkv (GQA); MLA ignores it
  int64_t head_dim = 64;             // Dh of GQA attention
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens' weight
  RopeConfig rope;

  // GQA attention options.
  bool qkv_bias = false;  // bias on q/k/v (qwen2, qwen2_moe)
  bool o_bias = false;    // bias on o_proj (llama attention_bias)
  bool qk_norm = false;   // per-head RMSNorm of q and k before RoPE (qwen3)
  bool mlp_bias = false;  // llama mlp_bias

  // MLA (deepseek_v3). q_lora_rank 0 means a plain q_proj.
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;  // R: the cached latent width
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;  // Dr: the cached (shared) RoPE key width
  int64_t v_head_dim = 0;
  bool rope_interleave = true;  // DeepSeek's pairwise RoPE layout (HF rope_interleave)

  // Mixture of experts. num_experts 0 = dense model.
  int64_t num_experts = 0;                      // E routed experts
  int64_t num_experts_per_tok = 0;              // K
  int64_t moe_intermediate_size = 0;            // width of one routed expert
  int64_t n_shared_experts = 0;                 // deepseek: shared expert width = n * moe_intermediate_size
  int64_t shared_expert_intermediate_size = 0;  // qwen2_moe: gated shared expert width
  std::string scoring_func = "softmax";         // softmax (qwen) | sigmoid (deepseek_v3)
  bool norm_topk_prob = false;                  // renormalise the K selected weights
  double routed_scaling_factor = 1.0;           // deepseek: multiplies the routed weights
  int64_t n_group = 1;                          // deepseek: expert groups for group-limited routing
  int64_t topk_group = 1;                       // deepseek: groups kept per token
  int64_t first_k_dense_replace = 0;            // deepseek: the first k layers are dense
  int64_t decoder_sparse_step = 1;              // qwen: every n-th layer is MoE
  std::vector<int64_t> mlp_only_layers;         // qwen: layers forced dense
  // Balancing (DeepSeek-V3 sec. 2.1.2). Not HF keys: r1kit keeps them under "r1kit".
  double bias_update_speed = 0.001;  // gamma of the aux-loss-free bias update
  double seq_aux_loss_alpha = 0.0;   // alpha of the sequence-wise balance loss (0 = off)

  int64_t bos_token_id = -1;  // -1 = unset
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;

  Json hf_extra = Json::object();  // keys r1kit does not use, written back verbatim

  bool is_mla() const { return kv_lora_rank > 0; }
  bool is_moe_layer(int64_t layer) const;
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Head size RoPE rotates: the RoPE slice for MLA, the full head for GQA.
  int64_t rope_dim() const { return is_mla() ? qk_rope_head_dim : head_dim; }
};

// Parses an HF config.json object; `where` names it in errors. Validates the result.
ModelConfig parse_model_config(const Json& j, const std::string& where);
ModelConfig load_model_config(const std::string& path);
// HF config.json for this config (transformers 5 keys), hf_extra merged back in.
Json model_config_to_json(const ModelConfig& c);
// Throws r1kit::Error when fields contradict each other (heads not dividing, K > E, ...).
void validate(const ModelConfig& c, const std::string& where);

}  // namespace r1kit::policy
