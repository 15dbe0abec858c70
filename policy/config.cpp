// ModelConfig <-> HF config.json: the keys every architecture shares, RoPE in both the
// transformers 4 (`rope_theta` + `rope_scaling`) and 5 (`rope_parameters`) spellings, then
// the architecture's own keys (policy/models/<type>.cpp).
#include "policy/config.h"

#include <algorithm>

#include "policy/architecture.h"
#include "src/logging.h"

namespace r1kit::policy {
namespace {

// Keys HF writes that do not change the forward pass; kept verbatim in hf_extra.
const char* const kPassThroughKeys[] = {
    "architectures",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "use_cache",
    "initializer_range",
    "auto_map",
    "output_router_logits",
    "router_aux_loss_coef",
    "attention_dropout",
    "pretraining_tp",
    "num_nextn_predict_layers",
    "num_mtp_layers",
    "model_name_or_path",
    "name_or_path",
    "_name_or_path",
    "max_window_layers",
    "sliding_window",
    "layer_types",
    "quantization_config",
    "moe_layer_freq",
    "topk_method",
    "aux_loss_alpha",
    "seq_aux",
    "ep_size",
    "scoring_func",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "chunk_size_feed_forward",
    "is_encoder_decoder",
    "problem_type",
};

void read_rope(const Json& j, const std::string& where, RopeConfig& r) {
  JsonFields f(j, where);
  std::string type;
  f.get("rope_type", type);
  if (type.empty()) f.get("type", type);  // transformers 4 spelling
  if (!type.empty()) r.type = type;
  f.get("rope_theta", r.theta);
  f.get("factor", r.factor);
  f.get("original_max_position_embeddings", r.original_max_position);
  f.get("beta_fast", r.beta_fast);
  f.get("beta_slow", r.beta_slow);
  f.get("mscale", r.mscale);
  f.get("mscale_all_dim", r.mscale_all_dim);
  f.get("attention_factor", r.attention_factor);
  f.get("truncate", r.truncate);
  f.get("low_freq_factor", r.low_freq_factor);
  f.get("high_freq_factor", r.high_freq_factor);
  f.ignore("partial_rotary_factor");
  f.finish();
  if (r.type != "default" && r.type != "yarn" && r.type != "llama3" && r.type != "linear") {
    throw Error(where + ".rope_type: '" + r.type + "' is not supported (default, yarn, llama3, linear)");
  }
}

}  // namespace

bool ModelConfig::is_moe_layer(int64_t layer) const {
  if (num_experts <= 0) return false;
  if (layer < first_k_dense_replace) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) {
    return false;
  }
  return (layer + 1) % decoder_sparse_step == 0;
}

ModelConfig parse_model_config(const Json& j, const std::string& where) {
  ModelConfig c;
  JsonFields f(j, where);
  f.require("model_type", c.model_type);
  const Architecture* found = nullptr;
  try {
    found = &find_architecture(c.model_type);
  } catch (const Error& e) {
    f.fail("model_type", std::string("is not known: ") + e.what());  // the error lists the known types
  }
  const Architecture& arch = *found;

  f.get("vocab_size", c.vocab_size);
  f.get("hidden_size", c.hidden_size);
  f.get("intermediate_size", c.intermediate_size);
  f.get("num_hidden_layers", c.num_hidden_layers);
  f.get("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;
  f.get("num_key_value_heads", c.num_key_value_heads);
  c.head_dim = c.hidden_size / std::max<int64_t>(c.num_attention_heads, 1);
  f.get("head_dim", c.head_dim);
  f.get("max_position_embeddings", c.max_position_embeddings);
  f.get("rms_norm_eps", c.rms_norm_eps);
  f.get("tie_word_embeddings", c.tie_word_embeddings);
  f.get("bos_token_id", c.bos_token_id);
  f.get("pad_token_id", c.pad_token_id);
  if (const Json* eos = f.raw("eos_token_id"); eos != nullptr && !eos->is_null()) {
    if (eos->is_array()) {
      f.get("eos_token_id", c.eos_token_ids);
    } else {
      f.get("eos_token_id", c.eos_token_ids.emplace_back());
    }
  }
  std::string act = "silu";
  f.get("hidden_act", act);
  if (act != "silu") f.fail("hidden_act", "'" + act + "' is not supported (silu only)");
  bool sliding = false;
  f.get("use_sliding_window", sliding);
  if (sliding) f.fail("use_sliding_window", "true is not supported");

  // RoPE: transformers 5 nests everything in rope_parameters; 4 has rope_theta + rope_scaling.
  f.get("rope_theta", c.rope.theta);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (const Json* r = f.raw(key); r != nullptr && !r->is_null()) read_rope(*r, f.path(key), c.rope);
  }

  arch.read_config(f, c);

  // Balancing knobs are r1kit's own; they live under one key so HF ignores them.
  if (const Json* r = f.raw("r1kit"); r != nullptr && !r->is_null()) {
    JsonFields rf(*r, f.path("r1kit"));
    rf.get("bias_update_speed", c.bias_update_speed);
    rf.get("seq_aux_loss_alpha", c.seq_aux_loss_alpha);
    rf.finish();
  }

  for (const char* key : kPassThroughKeys) {
    if (f.has(key)) c.hf_extra[key] = j.at(key);
    f.ignore(key);
  }
  for (const auto& key : f.unknown()) {
    // Real checkpoints carry keys of their own; keep them, but say so once.
    log::debug("{}: key '{}' is not used by r1kit (kept as is)", where, key);
    c.hf_extra[key] = j.at(key);
  }
  validate(c, where);
  return c;
}

ModelConfig load_model_config(const std::string& path) { return parse_model_config(read_json_file(path), path); }

void validate(const ModelConfig& c, const std::string& where) {
  auto bad = [&](const std::string& what) { throw Error(where + ": " + what); };
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_hidden_layers <= 0) {
    bad("vocab_size, hidden_size and num_hidden_layers must be positive");
  }
  if (c.num_attention_heads <= 0) bad("num_attention_heads must be positive");
  if (!c.is_mla()) {
    if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0) {
      bad("num_attention_heads (" + std::to_string(c.num_attention_heads) +
          ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
    }
    if (c.head_dim % 2 != 0) bad("head_dim must be even for RoPE");
  } else {
    if (c.qk_rope_head_dim % 2 != 0) bad("qk_rope_head_dim must be even for RoPE");
    if (c.qk_nope_head_dim <= 0 || c.v_head_dim <= 0) bad("qk_nope_head_dim and v_head_dim must be positive");
  }
  if (c.num_experts > 0) {
    if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_experts) {
      bad("num_experts_per_tok must be in [1, num_experts=" + std::to_string(c.num_experts) + "]");
    }
    if (c.moe_intermediate_size <= 0) bad("moe_intermediate_size must be positive");
    if (c.n_group <= 0 || c.num_experts % c.n_group != 0) bad("n_group must divide the number of experts");
    if (c.topk_group <= 0 || c.topk_group > c.n_group) bad("topk_group must be in [1, n_group]");
    if (c.decoder_sparse_step <= 0) bad("decoder_sparse_step must be positive");
  }
  if (c.rope.type == "yarn" && c.rope.original_max_position <= 0) {
    bad("rope yarn needs original_max_position_embeddings");
  }
}

Json model_config_to_json(const ModelConfig& c) {
  const Architecture& arch = find_architecture(c.model_type);
  Json j = c.hf_extra;
  j["model_type"] = c.model_type;
  j["architectures"] = Json::array({arch.hf_class()});
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;

  Json rope = {{"rope_type", c.rope.type}, {"rope_theta", c.rope.theta}};
  if (c.rope.type != "default") rope["factor"] = c.rope.factor;
  if (c.rope.type == "yarn" || c.rope.type == "llama3") {
    rope["original_max_position_embeddings"] = c.rope.original_max_position;
  }
  if (c.rope.type == "yarn") {
    rope["beta_fast"] = c.rope.beta_fast;
    rope["beta_slow"] = c.rope.beta_slow;
    if (c.rope.mscale != 0) rope["mscale"] = c.rope.mscale;
    if (c.rope.mscale_all_dim != 0) rope["mscale_all_dim"] = c.rope.mscale_all_dim;
    if (c.rope.attention_factor != 0) rope["attention_factor"] = c.rope.attention_factor;
    if (!c.rope.truncate) rope["truncate"] = false;
  }
  if (c.rope.type == "llama3") {
    rope["low_freq_factor"] = c.rope.low_freq_factor;
    rope["high_freq_factor"] = c.rope.high_freq_factor;
  }
  j["rope_parameters"] = rope;
  j.erase("rope_scaling");
  j.erase("rope_theta");
  arch.write_config(c, j);
  j["r1kit"] = {{"bias_update_speed", c.bias_update_speed}, {"seq_aux_loss_alpha", c.seq_aux_loss_alpha}};
  return j;
}

}  // namespace r1kit::policy
