// `r1kit merge --adapter DIR --out DIR [--model BASE]`: a PEFT LoRA adapter directory merged
// into its base (W + (alpha / r) B A per adapted layer) and written as a plain Hugging Face
// model directory with the adapter's tokenizer files, as peft's merge_and_unload +
// save_pretrained would. --model overrides the adapter's base_model_name_or_path.
#include <filesystem>
#include <memory>
#include <string>

#include "pipelines/checkpoint.h"
#include "policy/causal_lm.h"
#include "policy/lora.h"
#include "policy/pretrained.h"
#include "src/cli/commands.h"
#include "src/device.h"
#include "src/error.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::cli {
namespace {

struct MergeCommandArgs {
  std::string adapter;  // PEFT adapter directory (adapter_config.json, adapter_model.safetensors)
  std::string model;    // base model directory; "" = the adapter's base_model_name_or_path
  std::string out;      // merged model directory
};

void run_merge(const MergeCommandArgs& a) {
  if (!policy::is_peft_adapter_dir(a.adapter))
    throw Error(a.adapter + ": not a PEFT adapter directory (no adapter_config.json)");
  const std::string base = a.model.empty() ? policy::peft_base_model(a.adapter) : a.model;
  auto model = policy::load_pretrained(base, resolve_device("cpu", "float32"));
  policy::load_peft_adapter(*model, a.adapter);
  const int64_t adapted = static_cast<int64_t>(policy::lora_options(*model).target_modules.size());
  policy::merge_lora(*model);
  // The adapter directory's tokenizer when it has one (a stage writes it there), else the base's.
  const Tokenizer tokenizer =
      Tokenizer::load(std::filesystem::exists(std::filesystem::path(a.adapter) / "tokenizer.json") ? a.adapter : base);
  pipelines::save_model_directory(*model, tokenizer, a.out);
  log::info("merge: {} adapted layers of {} merged -> {}", adapted, base, a.out);
}

}  // namespace

void add_merge_command(CLI::App& app) {
  auto args = std::make_shared<MergeCommandArgs>();
  CLI::App* cmd = app.add_subcommand("merge", "Merge a PEFT LoRA adapter into its base: a plain HF model directory");
  cmd->add_option("--adapter", args->adapter, "PEFT adapter directory")->required();
  cmd->add_option("--model", args->model, "Base model directory (default: the adapter's base_model_name_or_path)");
  cmd->add_option("--out", args->out, "Output model directory")->required();
  cmd->callback([args] { run_merge(*args); });
}

}  // namespace r1kit::cli
