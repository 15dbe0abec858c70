// `r1kit quantize --model DIR --out DIR`: a model directory (fp32 or bf16) written in
// DeepSeek-V3's released FP8 layout (policy/fp8.h): every Linear weight as float8 e4m3 with
// a weight_scale_inv per 128 x 128 block, the embeddings, lm_head, norms and router in bf16,
// config.json's quantization_config {quant_method fp8, fmt e4m3, activation_scheme dynamic,
// weight_block_size [128, 128]}, and the model's tokenizer files when it has them.
#include <filesystem>
#include <memory>
#include <string>

#include "pipelines/checkpoint.h"
#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "src/cli/commands.h"
#include "src/device.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::cli {
namespace {

struct QuantizeArgs {
  std::string model;  // HF model directory
  std::string out;    // FP8 model directory
};

void run_quantize(const QuantizeArgs& a) {
  auto model = policy::load_pretrained(a.model, resolve_device("cpu", "float32"));
  const policy::SaveOptions fp8{.dtype = "bfloat16", .fp8 = true};
  if (std::filesystem::exists(std::filesystem::path(a.model) / "tokenizer.json")) {
    pipelines::save_model_directory(*model, Tokenizer::load(a.model), a.out, fp8);
  } else {
    policy::save_pretrained(*model, a.out, fp8);  // weights and configs only, as given
  }
  log::info("quantize: {} -> {} (FP8 e4m3, 128x128 block scales)", a.model, a.out);
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Write a model in DeepSeek-V3's FP8 layout (e4m3, 128x128 scales)");
  cmd->add_option("--model", args->model, "Model directory")->required();
  cmd->add_option("--out", args->out, "Output model directory")->required();
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace r1kit::cli
