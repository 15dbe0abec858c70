// load_pretrained / save_pretrained (see pretrained.h).
#include "policy/pretrained.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "policy/fp8.h"
#include "policy/lora.h"
#include "src/atomic_file.h"
#include "src/config.h"
#include "src/error.h"
#include "src/logging.h"
#include "src/safetensors.h"
#include "src/tensor_io.h"
#include "src/tokenizer.h"

namespace r1kit::policy {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class WeightSource {
 public:
  explicit WeightSource(const std::string& dir) : weights_(ModelWeights::open(dir)) {}
  bool has(const std::string& name) const { return weights_.contains(name); }
  at::Tensor get(const std::string& name) {
    used_.insert(name);
    at::Tensor t = to_tensor(weights_.at(name));
    if (t.scalar_type() == at::kFloat8_e4m3fn || t.scalar_type() == at::kFloat8_e5m2) {
      const std::string scale = name + "_scale_inv";
      if (!has(scale)) throw Error(weights_.dir() + ": FP8 tensor '" + name + "' has no '" + scale + "'");
      used_.insert(scale);
      t = dequantize_fp8(t, to_tensor(weights_.at(scale)));
    }
    return t;
  }
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& n : weights_.names()) {
      if (!used_.count(n)) out.push_back(n);
    }
    return out;
  }
  const std::string& dir() const { return weights_.dir(); }

 private:
  ModelWeights weights_;
  std::set<std::string> used_;
};

// Stacks per-expert tensors into the fused layout. prefix = "model.layers.3.mlp.experts."
at::Tensor stack_experts(WeightSource& src, const std::string& prefix, int64_t E, bool gate_up) {
  std::vector<at::Tensor> parts;
  for (int64_t e = 0; e < E; ++e) {
    const std::string p = prefix + std::to_string(e) + ".";
    if (gate_up) {
      parts.push_back(at::cat({src.get(p + "gate_proj.weight"), src.get(p + "up_proj.weight")}, 0));  // [2I, D]
    } else {
      parts.push_back(src.get(p + "down_proj.weight"));  // [D, I]
    }
  }
  return at::stack(parts, 0);
}

void copy_into(at::Tensor& dst, const at::Tensor& src, const std::string& name, const std::string& dir) {
  if (dst.sizes() != src.sizes()) {
    throw Error(dir + ": tensor '" + name + "' has shape " + c10::str(src.sizes()) + ", the config needs " +
                c10::str(dst.sizes()));
  }
  at::NoGradGuard no_grad;
  dst.copy_(src);
}

}  // namespace

std::shared_ptr<CausalLM> create_model(const ModelConfig& config, uint64_t seed) {
  at::manual_seed(seed);
  return std::make_shared<CausalLM>(config);
}

void load_weights(CausalLM& model, const std::string& dir) {
  WeightSource src(dir);
  const int64_t E = model.config().num_experts;
  auto load_one = [&](const std::string& name, at::Tensor& dst) {
    if (src.has(name)) return copy_into(dst, src.get(name), name, dir);
    const bool gate_up = ends_with(name, "mlp.experts.gate_up_proj");
    if (gate_up || ends_with(name, "mlp.experts.down_proj")) {
      const std::string prefix = name.substr(0, name.rfind('.') + 1);  // "...mlp.experts."
      if (src.has(prefix + "0." + (gate_up ? "gate_proj.weight" : "down_proj.weight"))) {
        return copy_into(dst, stack_experts(src, prefix, E, gate_up), name, dir);
      }
    }
    throw Error(dir + ": missing tensor '" + name + "'");
  };
  for (auto& p : model.named_parameters()) load_one(p.key(), p.value());
  for (auto& b : model.named_buffers()) load_one(b.key(), b.value());
  model.tie_weights();

  const std::string mtp_prefix = "model.layers." + std::to_string(model.config().num_hidden_layers) + ".";
  int64_t ignored = 0;
  for (const auto& name : src.unused()) {
    if (name.rfind(mtp_prefix, 0) == 0) continue;  // MTP module: transformers skips it too
    if (name == "lm_head.weight" && model.config().tie_word_embeddings) continue;
    if (ends_with(name, "rotary_emb.inv_freq")) continue;  // old checkpoints saved the buffer
    if (++ignored <= 5) log::warn("{}: tensor '{}' is not used by the model", dir, name);
  }
  if (ignored > 5) log::warn("{}: {} more tensors not used by the model", dir, ignored - 5);
}

namespace {

// generation_config.json's eos_token_id (an id or a list: Llama-3.1 and Qwen2.5 Instruct stop
// on more ids than config.json names) joins the model's stop ids, after config.json's.
void add_generation_eos_ids(ModelConfig& config, const std::string& dir) {
  const std::string path = (fs::path(dir) / "generation_config.json").string();
  if (!fs::exists(path)) return;
  const Json gen = read_json_file(path);
  if (!gen.is_object() || !gen.contains("eos_token_id") || gen["eos_token_id"].is_null()) return;
  const Json& eos = gen["eos_token_id"];
  std::vector<Json> ids = eos.is_array() ? std::vector<Json>(eos.begin(), eos.end()) : std::vector<Json>{eos};
  for (const Json& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= config.vocab_size) {
      throw Error(path + ": eos_token_id " + id.dump() + " is not a token id of the model (vocab_size " +
                  std::to_string(config.vocab_size) + ")");
    }
    const int64_t v = id.get<int64_t>();
    if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), v) == config.eos_token_ids.end()) {
      config.eos_token_ids.push_back(v);
    }
  }
}

// The tokenizer's own eos_token (tokenizer_config.json) stops generation too: an instruct
// model's turn ends with it (Qwen2.5-Instruct's "<|im_end|>", whose config.json names
// "<|endoftext|>"). Its id is the tokenizer.json added token of that content.
void add_tokenizer_eos_id(ModelConfig& config, const std::string& dir) {
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  const std::string tokenizer_path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(config_path) || !fs::exists(tokenizer_path)) return;
  const Json tc = read_json_file(config_path);
  if (!tc.is_object() || !tc.contains("eos_token")) return;
  const Json& e = tc["eos_token"];
  const std::string content = token_content(e);
  if (content.empty()) return;
  const Json tok = read_json_file(tokenizer_path);
  if (!tok.is_object() || !tok.contains("added_tokens") || !tok["added_tokens"].is_array()) return;
  for (const Json& a : tok["added_tokens"]) {
    if (!a.is_object() || a.value("content", "") != content || !a.contains("id") || !a["id"].is_number_integer()) {
      continue;
    }
    const int64_t id = a["id"].get<int64_t>();
    if (id >= 0 && id < config.vocab_size &&
        std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), id) == config.eos_token_ids.end()) {
      config.eos_token_ids.push_back(id);
    }
    return;
  }
}

}  // namespace

std::shared_ptr<CausalLM> load_pretrained(const std::string& dir, const DeviceChoice& device) {
  // A PEFT adapter directory: its base model with the adapters on (frozen base).
  if (is_peft_adapter_dir(dir) && !fs::exists(fs::path(dir) / "config.json")) {
    auto model = load_pretrained(peft_base_model(dir), device);
    load_peft_adapter(*model, dir);
    return model;
  }
  ModelConfig config = load_model_config((fs::path(dir) / "config.json").string());
  add_generation_eos_ids(config, dir);
  add_tokenizer_eos_id(config, dir);
  auto model = std::make_shared<CausalLM>(config);  // random init is overwritten below
  load_weights(*model, dir);
  model->to(device.device, device.dtype);
  // The DeepSeek bias steers selection at fp32 precision (HF _keep_in_fp32_modules_strict).
  for (auto& b : model->named_buffers()) {
    if (ends_with(b.key(), "e_score_correction_bias")) b.value().set_data(b.value().to(at::kFloat));
  }
  model->tie_weights();
  model->set_source_dir(fs::absolute(dir).lexically_normal().string());
  return model;
}

void copy_weights(const CausalLM& from, CausalLM& to) {
  at::NoGradGuard no_grad;
  auto src_params = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(src_params[p.key()]);
  auto src_buffers = from.named_buffers();
  for (auto& b : to.named_buffers()) b.value().copy_(src_buffers[b.key()]);
}

std::shared_ptr<CausalLM> copy_model(const CausalLM& model) {
  auto copy = std::make_shared<CausalLM>(model.config());
  const at::Tensor& probe = model.lm_head_weight();
  copy->to(probe.device(), probe.scalar_type());
  for (auto& b : copy->named_buffers()) {  // router biases stay fp32 (see load_pretrained)
    if (ends_with(b.key(), "e_score_correction_bias")) b.value().set_data(b.value().to(at::kFloat));
  }
  copy->tie_weights();
  copy_weights(model, *copy);
  return copy;
}

void save_pretrained(const CausalLM& model, const std::string& dir, const SaveOptions& options) {
  fs::create_directories(dir);
  const at::ScalarType disk = options.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // keeps the CPU copies alive
  auto put = [&](const std::string& name, const at::Tensor& t, bool keep_fp32 = false) {
    if (options.fp8 && fp8_quantized(name, t)) {  // the release's layout: e4m3 blocks + scales
      const Fp8Weight q = quantize_fp8(t.detach().to(at::kCPU));
      tensors.emplace_back(name, q.weight.contiguous());
      tensors.emplace_back(name + "_scale_inv", q.scale_inv.contiguous());
      return;
    }
    tensors.emplace_back(name, t.detach().to(at::kCPU, keep_fp32 ? at::kFloat : disk).contiguous());
  };
  for (const auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    const bool gate_up = ends_with(name, "mlp.experts.gate_up_proj");
    if (options.fused_experts || !(gate_up || ends_with(name, "mlp.experts.down_proj"))) {
      put(name, p.value());
      continue;
    }
    const std::string prefix = name.substr(0, name.rfind('.') + 1);
    const at::Tensor w = p.value();
    const int64_t I = gate_up ? w.size(1) / 2 : 0;
    for (int64_t e = 0; e < w.size(0); ++e) {
      const std::string p_e = prefix + std::to_string(e) + ".";
      if (gate_up) {
        put(p_e + "gate_proj.weight", w[e].narrow(0, 0, I));
        put(p_e + "up_proj.weight", w[e].narrow(0, I, I));
      } else {
        put(p_e + "down_proj.weight", w[e]);
      }
    }
  }
  for (const auto& b : model.named_buffers()) put(b.key(), b.value(), /*keep_fp32=*/true);
  std::vector<TensorToWrite> records;
  for (const auto& [name, t] : tensors) records.push_back(to_write(name, t));
  write_model_weights(dir, records);

  Json config = model_config_to_json(model.config());
  config["torch_dtype"] = options.dtype;
  // A model loaded from an FP8 release holds dequantised weights: only an FP8 save says fp8.
  config.erase("quantization_config");
  if (options.fp8) {
    config["quantization_config"] = {{"quant_method", "fp8"},
                                     {"fmt", "e4m3"},
                                     {"activation_scheme", "dynamic"},
                                     {"weight_block_size", {kFp8Block, kFp8Block}}};
  }
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
  Json gen = {{"_from_model_config", true}};
  if (model.config().bos_token_id >= 0) gen["bos_token_id"] = model.config().bos_token_id;
  if (!model.config().eos_token_ids.empty()) {
    gen["eos_token_id"] = model.config().eos_token_ids.size() == 1 ? Json(model.config().eos_token_ids[0])
                                                                   : Json(model.config().eos_token_ids);
  }
  write_file_atomic((fs::path(dir) / "generation_config.json").string(), gen.dump(2) + "\n");
}

}  // namespace r1kit::policy
