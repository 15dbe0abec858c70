// A tiny qwen3_moe policy with its own BPE tokenizer, saved as an HF model directory, for the
// pipeline tests that start a recipe from a model on disk (D 32, L 2, H 4 / Hkv 2, Dh 8,
// 4 experts top-2). The tokenizer is trained on arithmetic-looking text with the R1 tags.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "policy/pretrained.h"
#include "src/bpe_trainer.h"
#include "src/tokenizer.h"

namespace r1kit::testing {

// An in-memory tiny config of `type` (vocabulary 50, D 32, L 2, H 4 / Hkv 2, Dh 8, 4 experts
// top-2 for the MoE types; deepseek_v3 with MLA): the engine and CPU-kernel tests' model.
inline policy::ModelConfig tiny_config(const std::string& type) {
  policy::ModelConfig c;
  c.model_type = type;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 16;
  c.eos_token_ids = {1};
  if (type == "deepseek_v3") {  // MLA, sigmoid router, a shared expert
    c.q_lora_rank = 16;
    c.kv_lora_rank = 12;
    c.qk_nope_head_dim = 8;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 6;
    c.head_dim = 4;
    c.scoring_func = "sigmoid";
    c.norm_topk_prob = true;
    c.routed_scaling_factor = 2.5;
    c.n_shared_experts = 1;
    c.n_group = 2;
    c.topk_group = 1;
  }
  return c;
}

// config.json keys of a fresh tiny deepseek_v3 for an sft stage's model_config (MLA, shared +
// routed experts, group routing, one dense layer first).
inline Json tiny_deepseek_v3_model_config() {
  return {{"model_type", "deepseek_v3"},
          {"hidden_size", 32},
          {"intermediate_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 2},
          {"q_lora_rank", 16},
          {"kv_lora_rank", 16},
          {"qk_nope_head_dim", 8},
          {"qk_rope_head_dim", 8},
          {"v_head_dim", 8},
          {"n_routed_experts", 4},
          {"num_experts_per_tok", 2},
          {"moe_intermediate_size", 16},
          {"n_shared_experts", 1},
          {"n_group", 2},
          {"topk_group", 1},
          {"first_k_dense_replace", 1},
          {"routed_scaling_factor", 2.5},
          {"max_position_embeddings", 128}};
}

inline void save_tiny_policy(const std::filesystem::path& dir, uint64_t seed = 3) {
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i) {
    texts.push_back(std::to_string(i) + "+" + std::to_string(i % 7) + " <think> </think> <answer> </answer>");
  }
  BpeTrainerOptions t;
  t.vocab_size = 300;
  t.special_tokens = {"<|endoftext|>", "<think>", "</think>", "<answer>", "</answer>"};
  const Tokenizer tok = train_bpe(texts, t);
  policy::ModelConfig c;
  c.model_type = "qwen3_moe";
  c.vocab_size = tok.vocab_size();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.qk_norm = true;  // qwen3_moe always has q/k norms
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 16;
  c.eos_token_ids = {*tok.token_to_id("<|endoftext|>")};
  policy::save_pretrained(*policy::create_model(c, seed), dir.string());
  tok.save((dir / "tokenizer.json").string());
}

}  // namespace r1kit::testing
