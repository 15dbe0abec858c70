// LoRA adapters (see lora.h). PEFT's LoraLayer is the reference: A initialised as
// kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B zero; scaling alpha / r.
#include "policy/lora.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "policy/causal_lm.h"
#include "policy/layers/linear.h"
#include "src/atomic_file.h"
#include "src/error.h"
#include "src/safetensors.h"
#include "src/tensor_io.h"

namespace r1kit::policy {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrefix = "base_model.model.";  // PEFT's prefix of the wrapped model's names

// Every Linear layer of the model with its Hugging Face module name, in module order.
std::vector<std::pair<std::string, std::shared_ptr<Linear>>> linear_layers(const CausalLM& model) {
  std::vector<std::pair<std::string, std::shared_ptr<Linear>>> out;
  for (const auto& m : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto linear = std::dynamic_pointer_cast<Linear>(m.value())) out.emplace_back(m.key(), linear);
  }
  return out;
}

// A Linear layer of a MoE block (shared experts, the shared-expert gate): "all-linear" leaves
// the whole MoE block frozen, as r1kit has no adapters for the routed experts (fused tensors).
// (PEFT 0.21 also maps a target named gate_proj / up_proj / down_proj inside a MoE model onto
// the routed experts' fused tensors, so such adapters would not mean the same in PEFT.)
bool in_moe_block(const std::string& name) { return name.find(".mlp.shared_expert") != std::string::npos; }

}  // namespace

bool lora_targets(const std::string& name, const std::vector<std::string>& targets) {
  const std::string last = name.substr(name.rfind('.') + 1);
  for (const std::string& t : targets) {
    // PEFT: a target names a module's last component(s) or the whole name.
    if ((t == "all-linear" && !in_moe_block(name)) || t == last || t == name ||
        (name.size() > t.size() && name.compare(name.size() - t.size() - 1, t.size() + 1, "." + t) == 0)) {
      return true;
    }
  }
  return false;
}

namespace {

void freeze_base(CausalLM& model) {
  for (at::Tensor& p : model.parameters()) p.requires_grad_(false);
}

std::shared_ptr<LoraAdapter> new_adapter(const Linear& layer, const LoraOptions& o) {
  auto a = std::make_shared<LoraAdapter>();
  const int64_t in = layer.weight.size(1), out = layer.weight.size(0);
  const auto options = at::TensorOptions().dtype(at::kFloat).device(layer.weight.device());
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  a->A = at::empty({o.r, in}, options).uniform_(-bound, bound).requires_grad_(true);  // [r, in]
  a->B = at::zeros({out, o.r}, options).requires_grad_(true);                         // [out, r]
  a->scale = o.alpha / static_cast<double>(o.r);
  a->dropout = o.dropout;
  return a;
}

}  // namespace

std::vector<std::string> add_lora(CausalLM& model, const LoraOptions& o, uint64_t seed) {
  if (o.r <= 0) throw Error("lora_r must be positive to add adapters");
  if (has_lora(model)) throw Error("the model already has LoRA adapters");
  at::manual_seed(seed);
  std::vector<std::string> names;
  std::set<std::string> matched;
  for (auto& [name, layer] : linear_layers(model)) {
    if (!lora_targets(name, o.target_modules)) continue;
    layer->lora = new_adapter(*layer, o);
    names.push_back(name);
    matched.insert(name.substr(name.rfind('.') + 1));
  }
  for (const std::string& t : o.target_modules) {
    const bool any = t == "all-linear" ? !names.empty()
                                       : std::any_of(names.begin(), names.end(),
                                                     [&](const std::string& n) { return lora_targets(n, {t}); });
    if (!any) {
      std::set<std::string> known;
      for (const auto& [name, layer] : linear_layers(model)) known.insert(name.substr(name.rfind('.') + 1));
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error("lora_target_modules: '" + t + "' matches no Linear layer of this model (its layers: " + list +
                  ", or all-linear)");
    }
  }
  freeze_base(model);
  return names;
}

bool has_lora(const CausalLM& model) {
  for (const auto& [name, layer] : linear_layers(model)) {
    if (layer->lora) return true;
  }
  return false;
}

LoraOptions lora_options(const CausalLM& model) {
  LoraOptions o;
  o.target_modules.clear();
  for (const auto& [name, layer] : linear_layers(model)) {
    if (!layer->lora) continue;
    o.r = layer->lora->A.size(0);
    o.alpha = layer->lora->scale * static_cast<double>(o.r);
    o.dropout = layer->lora->dropout;
    o.target_modules.push_back(name);
  }
  return o;
}

std::vector<at::Tensor> trainable_parameters(const CausalLM& model) {
  std::vector<at::Tensor> out;
  for (const auto& [name, layer] : linear_layers(model)) {
    if (!layer->lora) continue;
    out.push_back(layer->lora->A);
    out.push_back(layer->lora->B);
  }
  return out.empty() ? model.parameters() : out;
}

int64_t num_trainable_parameters(const CausalLM& model) {
  int64_t n = 0;
  for (const at::Tensor& p : trainable_parameters(model)) n += p.numel();
  return n;
}

AdaptersDisabled::AdaptersDisabled(CausalLM& model) : model_(model) {
  for (auto& [name, layer] : linear_layers(model_)) {
    if (layer->lora) layer->lora->enabled = false;
  }
}

AdaptersDisabled::~AdaptersDisabled() {
  for (auto& [name, layer] : linear_layers(model_)) {
    if (layer->lora) layer->lora->enabled = true;
  }
}

void merge_lora(CausalLM& model) {
  at::NoGradGuard no_grad;
  for (auto& [name, layer] : linear_layers(model)) {
    if (!layer->lora) continue;
    const LoraAdapter& a = *layer->lora;
    const at::Tensor delta = at::matmul(a.B, a.A) * a.scale;  // [out, in]
    layer->weight.add_(delta.to(layer->weight.scalar_type()));
    layer->lora.reset();
  }
  for (at::Tensor& p : model.parameters()) p.requires_grad_(true);
}

void save_peft_adapter(const CausalLM& model, const std::string& dir, const std::string& base_model) {
  const LoraOptions o = lora_options(model);
  if (o.r == 0) throw Error(dir + ": the model has no LoRA adapters to save");
  fs::create_directories(dir);
  std::vector<at::Tensor> keep;  // the CPU copies must outlive the write
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, layer] : linear_layers(model)) {
    if (!layer->lora) continue;
    for (const auto& [part, t] : {std::pair<const char*, at::Tensor>{"lora_A", layer->lora->A},
                                  std::pair<const char*, at::Tensor>{"lora_B", layer->lora->B}}) {
      keep.push_back(t.detach().to(at::kCPU, at::kFloat).contiguous());
      tensors.push_back(to_write(kPrefix + name + "." + part + ".weight", keep.back()));
    }
  }
  write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  const Json config = {{"peft_type", "LORA"},
                       {"task_type", "CAUSAL_LM"},
                       {"base_model_name_or_path", base_model},
                       {"r", o.r},
                       {"lora_alpha", o.alpha},
                       {"lora_dropout", o.dropout},
                       {"target_modules", o.target_modules},
                       {"bias", "none"},
                       {"fan_in_fan_out", false},
                       {"inference_mode", true},
                       {"init_lora_weights", true},
                       {"use_rslora", false},
                       {"use_dora", false},
                       {"modules_to_save", nullptr},
                       {"layers_to_transform", nullptr},
                       {"rank_pattern", Json::object()},
                       {"alpha_pattern", Json::object()}};
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(), config.dump(2) + "\n");
}

namespace {

// adapter_config.json's LoRA options; refuses what r1kit does not compute.
LoraOptions read_adapter_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  const Json c = read_json_file(path);
  if (!c.is_object()) throw Error(path + ": expected a JSON object");
  if (c.value("peft_type", "") != "LORA")
    throw Error(path + ": peft_type is " + c.value("peft_type", Json()).dump() + ", only LORA is supported");
  for (const char* key : {"use_rslora", "use_dora"}) {
    if (c.contains(key) && c[key].is_boolean() && c[key].get<bool>())
      throw Error(path + ": " + key + " is not supported");
  }
  if (c.contains("bias") && c["bias"].is_string() && c["bias"] != "none")
    throw Error(path + ": bias \"" + c["bias"].get<std::string>() + "\" is not supported (only \"none\")");
  LoraOptions o;
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    // Per-module ranks are not supported; PEFT writes patterns that match nothing too
    // ('.*\\.gate_up_proj' for MoE models), which load_peft_adapter checks against the tensors.
    if (c.contains(key) && c[key].is_object()) {
      for (const auto& [pattern, value] : c[key].items()) o.ignored_patterns.push_back(pattern);
    }
  }
  if (c.contains("fan_in_fan_out") && c["fan_in_fan_out"].is_boolean() && c["fan_in_fan_out"].get<bool>()) {
    throw Error(path + ": fan_in_fan_out is not supported");
  }
  if (!c.contains("r") || !c["r"].is_number_integer() || c["r"].get<int64_t>() <= 0)
    throw Error(path + ": r must be a positive integer");
  o.r = c["r"].get<int64_t>();
  if (c.contains("lora_alpha") && c["lora_alpha"].is_number()) o.alpha = c["lora_alpha"].get<double>();
  if (c.contains("lora_dropout") && c["lora_dropout"].is_number()) o.dropout = c["lora_dropout"].get<double>();
  return o;
}

// The adapter tensors of a PEFT file by module name: {module: (A, B)}.
std::map<std::string, std::pair<at::Tensor, at::Tensor>> read_adapter_tensors(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_model.safetensors").string();
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> out;
  const std::string prefix = kPrefix;
  for (const TensorView& v : file.tensors()) {
    const std::string& n = v.name;
    const bool is_a = n.size() > 14 && n.compare(n.size() - 14, 14, ".lora_A.weight") == 0;
    const bool is_b = n.size() > 14 && n.compare(n.size() - 14, 14, ".lora_B.weight") == 0;
    if (n.rfind(prefix, 0) != 0 || (!is_a && !is_b)) {
      throw Error(path + ": tensor '" + n + "' is not a LoRA A/B weight r1kit can load");
    }
    const std::string module = n.substr(prefix.size(), n.size() - prefix.size() - 14);
    (is_a ? out[module].first : out[module].second) = to_tensor(v).to(at::kFloat);
  }
  return out;
}

}  // namespace

void load_peft_adapter(CausalLM& model, const std::string& dir) {
  if (has_lora(model)) throw Error(dir + ": the model already has LoRA adapters");
  const LoraOptions o = read_adapter_config(dir);
  const auto tensors = read_adapter_tensors(dir);
  const std::string path = (fs::path(dir) / "adapter_model.safetensors").string();
  std::map<std::string, std::shared_ptr<Linear>> by_name;
  for (auto& [name, layer] : linear_layers(model)) by_name[name] = layer;
  for (const auto& [module, ab] : tensors) {
    for (const std::string& pattern : o.ignored_patterns) {
      // PEFT matches a pattern against the end of a module's name: (.*\.)?(pattern)$.
      std::regex re;
      try {
        re = std::regex("(.*\\.)?(" + pattern + ")");
      } catch (const std::regex_error&) {
        throw Error(path + ": rank_pattern / alpha_pattern '" + pattern + "' is not a regular expression r1kit reads");
      }
      if (std::regex_match(module, re)) {
        throw Error(path + ": module '" + module + "' has its own rank or alpha (rank_pattern / alpha_pattern '" +
                    pattern + "'), which r1kit does not support");
      }
    }
    auto it = by_name.find(module);
    if (it == by_name.end()) throw Error(path + ": module '" + module + "' is not a Linear layer of the model");
    const auto& [A, B] = ab;
    Linear& layer = *it->second;
    if (!A.defined() || !B.defined()) throw Error(path + ": module '" + module + "' lacks lora_A or lora_B");
    if (A.dim() != 2 || B.dim() != 2 || A.size(0) != o.r || B.size(1) != o.r || A.size(1) != layer.weight.size(1) ||
        B.size(0) != layer.weight.size(0)) {
      throw Error(path + ": module '" + module + "': lora_A " + c10::str(A.sizes()) + " / lora_B " +
                  c10::str(B.sizes()) + " do not fit r " + std::to_string(o.r) + " and the weight " +
                  c10::str(layer.weight.sizes()));
    }
    auto a = std::make_shared<LoraAdapter>();
    a->A = A.to(layer.weight.device()).requires_grad_(true);
    a->B = B.to(layer.weight.device()).requires_grad_(true);
    a->scale = o.alpha / static_cast<double>(o.r);
    a->dropout = o.dropout;
    layer.lora = std::move(a);
  }
  if (tensors.empty()) throw Error(path + ": no LoRA tensors");
  freeze_base(model);
}

void load_peft_adapter_values(CausalLM& model, const std::string& dir) {
  const auto tensors = read_adapter_tensors(dir);
  const std::string path = (fs::path(dir) / "adapter_model.safetensors").string();
  at::NoGradGuard no_grad;
  std::set<std::string> adapted;
  for (auto& [name, layer] : linear_layers(model)) {
    if (!layer->lora) continue;
    adapted.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(path + ": no adapter for module '" + name + "'");
    if (it->second.first.sizes() != layer->lora->A.sizes() || it->second.second.sizes() != layer->lora->B.sizes()) {
      throw Error(path + ": module '" + name + "': lora_A " + c10::str(it->second.first.sizes()) + " / lora_B " +
                  c10::str(it->second.second.sizes()) + ", the model's adapter is " + c10::str(layer->lora->A.sizes()) +
                  " / " + c10::str(layer->lora->B.sizes()));
    }
    layer->lora->A.copy_(it->second.first);
    layer->lora->B.copy_(it->second.second);
  }
  for (const auto& [module, ab] : tensors) {
    if (!adapted.count(module))
      throw Error(path + ": an adapter for module '" + module + "', which has none in the model");
  }
}

bool is_peft_adapter_dir(const std::string& dir) { return fs::exists(fs::path(dir) / "adapter_config.json"); }

std::string peft_base_model(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  const Json c = read_json_file(path);
  if (!c.is_object() || !c.contains("base_model_name_or_path") || !c["base_model_name_or_path"].is_string()) {
    throw Error(path + ": no base_model_name_or_path");
  }
  const fs::path base = c["base_model_name_or_path"].get<std::string>();
  const std::string resolved = base.is_absolute() ? base.string() : (fs::path(dir) / base).lexically_normal().string();
  std::error_code ec;
  if (base.empty() || fs::equivalent(resolved, dir, ec)) {
    throw Error(path + ": base_model_name_or_path names no base model directory (give the base: r1kit merge --model)");
  }
  if (!fs::exists(fs::path(resolved) / "config.json", ec)) {
    throw Error(path + ": base_model_name_or_path " + base.string() +
                " is not a model directory here (a Hub id? download it and give its directory: r1kit merge --model)");
  }
  return resolved;
}

}  // namespace r1kit::policy
