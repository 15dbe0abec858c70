// `r1kit plan RECIPE [--world-size W] [--device-memory GiB] [--device cpu|cuda] [--set ...]`
// and `r1kit plan --model DIR`: per training stage (sft, distill, grpo) and per rank, the bytes
// of parameters, gradients, optimizer states, frozen models, activations (with and without
// checkpointing), the step's transient tensors, the rollout's inference copy and KV cache,
// against the device memory; and the smallest world size / zero_stage / micro-batch that fits
// (pipelines/memory_plan.h). Nothing is allocated: a 7B plan runs anywhere. --model plans a
// grpo stage named "grpo" with r1kit's defaults on that model (its config.json, or a
// config.json path); --set grpo.key=value changes them.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipelines/distill.h"
#include "pipelines/grpo/options.h"
#include "pipelines/memory_plan.h"
#include "pipelines/recipe.h"
#include "pipelines/sft.h"
#include "policy/lora.h"
#include "policy/parameter_count.h"
#include "src/byte_size.h"
#include "src/cli/commands.h"
#include "src/device.h"
#include "src/error.h"
#include "src/tokenizer.h"

namespace r1kit::cli {
namespace {

namespace fs = std::filesystem;
using pipelines::MemoryPlan;
using pipelines::TrainingShape;

struct PlanArgs {
  std::string recipe;
  std::string model;  // instead of a recipe
  std::vector<std::string> sets;
  int world_size = 1;
  double device_memory_gib = 0;  // 0: this machine's available memory (CPU) or none given
  std::string device = "auto";   // what the stages' "auto" device means here
  int64_t prompt_tokens = 512;   // a grpo prompt's length when max_prompt_length is 0
  int max_world = 1024;
  bool json = false;
};

// A model directory (or PEFT adapter directory, or a config.json path) -> its config.
policy::ModelConfig config_of(const std::string& path) {
  if (fs::is_regular_file(path)) return policy::load_model_config(path);
  if (policy::is_peft_adapter_dir(path) && !fs::exists(fs::path(path) / "config.json")) {
    return config_of(policy::peft_base_model(path));
  }
  return policy::load_model_config((fs::path(path) / "config.json").string());
}

// The stage's model config: a path, a {"from": stage} whose model the plan already knows, or
// (sft) a model_config with the tokenizer's vocabulary.
policy::ModelConfig stage_model(const Json& stage, const std::map<std::string, policy::ModelConfig>& known,
                                const std::string& where) {
  if (stage.contains("model") && stage["model"].is_object() && stage["model"].contains("from")) {
    const std::string from = stage["model"]["from"].get<std::string>();
    auto it = known.find(from);
    if (it == known.end()) throw Error(where + "model: {\"from\": \"" + from + "\"} names no earlier training stage");
    return it->second;
  }
  if (stage.contains("model") && stage["model"].is_string()) return config_of(stage["model"].get<std::string>());
  Json cfg = stage.value("model_config", Json::object());
  if (!cfg.contains("vocab_size")) {
    cfg["vocab_size"] = stage.contains("tokenizer")
                            ? Tokenizer::load(stage["tokenizer"].get<std::string>()).vocab_size()
                            : stage.value("tokenizer_vocab_size", int64_t{512});
  }
  return policy::parse_model_config(cfg, where + "model_config");
}

// {"from": ...} values replaced by placeholders, so that the stage's own parser reads the rest.
Json without_references(Json stage) {
  for (auto it = stage.begin(); it != stage.end(); ++it) {
    if (it->is_object() && it->contains("from")) *it = "<from " + (*it)["from"].get<std::string>() + ">";
  }
  return stage;
}

bool on_cuda(const std::string& stage_device, const std::string& plan_device) {
  const std::string d = stage_device == "auto" ? plan_device : stage_device;
  if (d == "auto") return at::hasCUDA();
  return d.rfind("cuda", 0) == 0;
}

// What every training stage shares: the model, LoRA and the memory keys.
TrainingShape training_shape(const policy::ModelConfig& m, const pipelines::LoraStageOptions& lora,
                             const pipelines::MemoryOptions& memory, bool cuda) {
  TrainingShape s;
  s.model = m;
  s.lora = lora.lora;
  s.bf16 = memory.bf16.value_or(cuda);
  s.zero_stage = static_cast<int>(memory.zero_stage);
  s.gradient_checkpointing = memory.gradient_checkpointing;
  return s;
}

TrainingShape sft_shape(const pipelines::SftOptions& o, const policy::ModelConfig& m, bool cuda) {
  TrainingShape s = training_shape(m, o.lora, o.memory, cuda);
  s.global_rows = o.batch_size;
  s.tokens_per_row = o.seq_len;
  return s;
}

TrainingShape grpo_shape(const pipelines::grpo::GrpoOptions& o, const policy::ModelConfig& m, bool cuda,
                         int64_t prompt_tokens) {
  TrainingShape s = training_shape(m, o.lora, o.memory, cuda);
  s.micro_rows = o.per_device_train_batch_size;
  const int64_t prompt = o.prompts.max_prompt_length > 0 ? o.prompts.max_prompt_length : prompt_tokens;
  s.tokens_per_row = prompt + o.generation.sampling.max_new_tokens;
  s.reference_copy = o.loss.beta > 0 && o.lora.lora.r == 0;
  s.rollout_rows = o.prompts_per_step * o.num_generations;
  s.rollout_cap_rows = o.generation.engine.max_batch_rows;
  s.rollout_tokens = s.tokens_per_row;
  return s;
}

struct PlannedStage {
  std::string name, type;
  TrainingShape shape;
};

std::vector<PlannedStage> recipe_stages(const PlanArgs& a) {
  // --model: a one-stage recipe, a grpo stage named "grpo" with the defaults (--set grpo.key=...).
  const Json base =
      a.model.empty()
          ? read_json_file(a.recipe)
          : Json{{"stages",
                  Json::array(
                      {{{"name", "grpo"}, {"type", "grpo"}, {"model", a.model}, {"data", "(not read by plan)"}}})}};
  const Json recipe = pipelines::apply_overrides(base, a.sets);
  std::map<std::string, policy::ModelConfig> known;  // a training stage's output has its input's shape
  std::vector<PlannedStage> out;
  for (const Json& stage : recipe.value("stages", Json::array())) {
    const std::string name = stage.value("name", ""), type = stage.value("type", "");
    if (type != "sft" && type != "distill" && type != "grpo") continue;
    const std::string where = (a.model.empty() ? a.recipe : a.model) + ": stage '" + name + "': ";
    const pipelines::StageSetting setting{where, a.world_size};
    const policy::ModelConfig model = stage_model(stage, known, where);
    known[name] = model;
    const Json parsed = without_references(stage);
    PlannedStage p{name, type, {}};
    if (type == "grpo") {
      const auto o = pipelines::grpo::parse_grpo_options(parsed, setting);
      p.shape = grpo_shape(o, model, on_cuda(o.device, a.device), a.prompt_tokens);
    } else if (type == "sft") {
      const auto o = pipelines::parse_sft_options(parsed, setting);
      p.shape = sft_shape(o, model, on_cuda(o.device, a.device));
    } else {
      const auto o = pipelines::parse_distill_options(parsed, setting);
      p.shape = sft_shape(o.sft, model, on_cuda(o.sft.device, a.device));
      if (o.kd_weight > 0) p.shape.teacher = stage_model({{"model", stage["teacher"]}}, known, where + "teacher: ");
    }
    out.push_back(std::move(p));
  }
  if (out.empty()) throw Error(a.recipe + ": no training stage (sft, distill, grpo) to plan");
  return out;
}

Json plan_json(const MemoryPlan& p) {
  return {{"params", p.params},
          {"grads", p.grads},
          {"optimizer", p.optimizer},
          {"frozen_models", p.frozen_models},
          {"activations", p.activations},
          {"activations_without_checkpointing", p.activations_without_checkpointing},
          {"activations_with_checkpointing", p.activations_with_checkpointing},
          {"step_transient", p.step_transient},
          {"inference_copy", p.inference_copy},
          {"kv_cache", p.kv_cache},
          {"checkpoint_save", p.checkpoint_save},
          {"runtime", p.runtime},
          {"tensors", p.tensors()},
          {"total", p.total()}};
}

void print_stage(const PlannedStage& s, const MemoryPlan& p, int W, int64_t budget,
                 const std::optional<pipelines::FitChoice>& fit, int a_max_world) {
  const policy::ParameterCounts counts = policy::count_parameters(s.shape.model);
  auto gib = [](int64_t b) { return format_bytes(static_cast<double>(b)); };
  fmt::print(
      "stage {} ({}): {} {:.3g}B parameters ({:.3g}B active), {}{}, zero_stage {}, W={}, {} rows x {} tokens "
      "per forward\n",
      s.name, s.type, s.shape.model.model_type, counts.total / 1e9, counts.active / 1e9,
      s.shape.bf16 ? "bf16 over fp32 masters" : "fp32",
      s.shape.lora.r > 0 ? fmt::format(", LoRA r {}", s.shape.lora.r) : "", s.shape.zero_stage, W,
      s.shape.rows_per_forward(W), s.shape.tokens_per_row);
  const bool checkpointing = s.shape.gradient_checkpointing || s.shape.zero_stage == 3;
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"parameters (compute copy + masters)", gib(p.params)},
      {"gradients (fp32)", gib(p.grads)},
      {"optimizer states (AdamW)", gib(p.optimizer)},
      {"reference / teacher model", gib(p.frozen_models)},
      {std::string("activations (checkpointing ") + (checkpointing ? "on)" : "off)"), gib(p.activations)},
      {"  without / with checkpointing",
       gib(p.activations_without_checkpointing) + " / " + gib(p.activations_with_checkpointing)},
      {"step transients", gib(p.step_transient)},
      {"rollout: whole weights (zero_stage 3)", gib(p.inference_copy)},
      {"rollout: KV cache + logits", gib(p.kv_cache)},
      {"checkpoint save: whole fp32 weights (ZeRO)", gib(p.checkpoint_save)},
      {"tensors at the peak (memory/peak_bytes)", gib(p.tensors())},
      {"runtime (CPU process)", gib(p.runtime)},
      {"total per rank", gib(p.total())}};
  for (const auto& [k, v] : rows) fmt::print("  {:<40} {:>20}\n", k, v);
  if (budget > 0) {
    fmt::print("  {:<40} {:>20}  {}\n", "device memory", gib(budget), p.total() <= budget ? "fits" : "DOES NOT FIT");
    if (fit) {
      fmt::print(
          "  smallest that fits: W={} zero_stage {} {} rows per forward, gradient_checkpointing {} ({} per rank)\n",
          fit->world_size, fit->zero_stage, fit->micro_rows, fit->gradient_checkpointing ? "on" : "off",
          gib(fit->plan.total()));
    } else {
      fmt::print("  nothing up to W={} fits\n", a_max_world);
    }
  }
}

void run_plan(const PlanArgs& a) {
  if (a.recipe.empty() == a.model.empty()) throw Error("plan: give a recipe or --model DIR (one of them)");
  if (a.world_size < 1) throw Error("plan: --world-size must be >= 1");
  const std::vector<PlannedStage> stages = recipe_stages(a);
  const bool cuda = on_cuda("auto", a.device);
  // CPU peaks include the LibTorch runtime every r1kit process carries: this one's size now.
  const int64_t runtime = cuda ? 0 : resident_bytes();
  const int64_t budget = a.device_memory_gib > 0 ? static_cast<int64_t>(a.device_memory_gib * (int64_t{1} << 30))
                                                 : (cuda ? 0 : available_memory_bytes(c10::Device(c10::kCPU)));
  Json out = Json::array();
  for (const PlannedStage& s : stages) {
    const MemoryPlan p = pipelines::plan_memory(s.shape, a.world_size, runtime);
    const auto fit = budget > 0 ? pipelines::smallest_fit(s.shape, budget, a.max_world, runtime) : std::nullopt;
    if (a.json) {
      Json j = {{"stage", s.name}, {"type", s.type}, {"world_size", a.world_size}, {"plan", plan_json(p)}};
      if (budget > 0) j["device_memory"] = budget;
      if (fit) {
        j["fit"] = {{"world_size", fit->world_size},
                    {"zero_stage", fit->zero_stage},
                    {"rows_per_forward", fit->micro_rows},
                    {"gradient_checkpointing", fit->gradient_checkpointing},
                    {"total", fit->plan.total()}};
      }
      out.push_back(j);
    } else {
      print_stage(s, p, a.world_size, budget, fit, a.max_world);
    }
  }
  if (a.json) fmt::print("{}\n", out.dump());
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand("plan", "Per-rank memory of each training stage of a recipe, and what fits");
  cmd->add_option("recipe", args->recipe, "Recipe JSON");
  cmd->add_option("--model", args->model, "Plan a grpo stage with the defaults on this model (dir or config.json)");
  cmd->add_option("--set", args->sets, "stage.key=value override (repeatable)");
  cmd->add_option("--world-size", args->world_size, "Ranks (default 1)");
  cmd->add_option("--device-memory", args->device_memory_gib, "Memory per device in GiB (CPU default: available)");
  cmd->add_option("--device", args->device, "What a stage's device \"auto\" means here: auto, cpu or cuda");
  cmd->add_option("--prompt-tokens", args->prompt_tokens, "grpo prompt length when max_prompt_length is 0 (512)");
  cmd->add_flag("--json", args->json, "One JSON array of the stages' plans");
  cmd->callback([args] { run_plan(*args); });
}

}  // namespace r1kit::cli
