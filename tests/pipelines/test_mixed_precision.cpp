// Mixed precision (pipelines/mixed_precision.h) through Training on CPU: 100 AdamW steps at
// lr 1e-6 with bf16 compute move the fp32 master weights as far as fp32 training does (within
// 10%), where pure bf16 training (bf16 weights updated in place) barely moves them; the model
// computes in bf16 while the checkpoints and the final model carry the masters; save_dtype
// "auto" writes a bf16-loaded model in bf16.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <filesystem>
#include <fstream>

#include "pipelines/mixed_precision.h"
#include "pipelines/recipe.h"
#include "pipelines/training.h"
#include "policy/causal_lm.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"
#include "src/cpu_memory.h"
#include "src/jsonl.h"
#include "src/safetensors.h"
#include "src/tokenizer.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// All parameters as one fp32 vector.
at::Tensor flat_weights(const policy::CausalLM& model) {
  std::vector<at::Tensor> parts;
  for (const auto& p : model.named_parameters()) parts.push_back(p.value().detach().to(at::kFloat).reshape({-1}));
  return at::cat(parts);
}

enum class Mode { kFp32, kMixed, kPureBf16 };

// Trains the tiny policy in `dir` for `steps` AdamW steps at lr on one fixed batch; returns the
// final model directory (saved in save_dtype float32, i.e. the masters under mixed precision).
std::string train(const fs::path& base, const fs::path& run, Mode mode, int64_t steps, double lr,
                  const std::string& save_dtype = "float32") {
  auto model = policy::load_pretrained(base.string(), training_device("cpu"));
  const Tokenizer tok = Tokenizer::load(base.string());
  if (mode == Mode::kPureBf16) cast_parameters(*model, at::kBFloat16);  // the weights themselves in bf16
  MemoryOptions memory;
  memory.bf16 = mode == Mode::kMixed;
  memory.save_dtype = save_dtype;
  OptimizerOptions optimizer;
  optimizer.learning_rate = lr;
  const StageContext ctx{run.string(), "train", false};
  Training training(*model, optimizer, memory, CheckpointOptions{}, steps, ctx);
  EXPECT_EQ(model->lm_head_weight().scalar_type(), mode == Mode::kFp32 ? at::kFloat : at::kBFloat16);
  at::manual_seed(11);
  const at::Tensor tokens = at::randint(2, model->config().vocab_size, {4, 17}, at::kLong);
  model->train();
  for (int64_t step = 0; step < steps; ++step) {
    training.begin_step(step);
    training.optimizer().zero_grad();
    const at::Tensor hidden = model->forward_hidden(tokens.narrow(1, 0, 16));
    // Two micro-batches' worth of loss: gradients accumulate (in fp32 under mixed precision).
    for (int half = 0; half < 2; ++half) {
      const at::Tensor h = half == 0 ? hidden : model->forward_hidden(tokens.narrow(1, 0, 16));
      training.backward(-policy::token_logprobs(h, model->lm_head_weight(), tokens.narrow(1, 1, 16)).logprobs.mean());
    }
    training.step_optimizer();
    training.end_step(step, {}, tok, 1000);
  }
  EXPECT_EQ(model->lm_head_weight().scalar_type(), mode == Mode::kFp32 ? at::kFloat : at::kBFloat16);
  return training.save_final(tok);
}

TEST(MixedPrecision, MasterWeightsMoveAsFarAsFp32AtLr1e6) {
  const fs::path dir = testing::scratch_dir("mixed_precision");
  testing::save_tiny_policy(dir / "base");
  const auto cpu = resolve_device("cpu");
  const at::Tensor w0 = flat_weights(*policy::load_pretrained((dir / "base").string(), cpu));
  auto mean_dw = [&](Mode mode, const std::string& name) {
    const std::string out = train(dir / "base", dir / name, mode, 100, 1e-6);
    const at::Tensor start = mode == Mode::kPureBf16 ? w0.to(at::kBFloat16).to(at::kFloat) : w0;
    return (flat_weights(*policy::load_pretrained(out, cpu)) - start).abs().mean().item<double>();
  };
  const double fp32 = mean_dw(Mode::kFp32, "fp32");
  const double mixed = mean_dw(Mode::kMixed, "mixed");
  const double pure = mean_dw(Mode::kPureBf16, "pure");
  std::printf(
      "mean |dw| after 100 steps at lr 1e-6: fp32 %.4g, bf16 + fp32 masters %.4g (%.1f%%), pure bf16 %.4g (%.1f%%)\n",
      fp32, mixed, 100 * mixed / fp32, pure, 100 * pure / fp32);
  EXPECT_GT(fp32, 1e-5);
  EXPECT_NEAR(mixed / fp32, 1.0, 0.10);
  EXPECT_LT(pure / fp32, 0.5)
      << "pure bf16 should lose most updates to rounding (the test would not see a bf16 trainer)";
}

// The final model's dtype on disk: save_dtype "auto" is the dtype the model was loaded in
// (config.json's torch_dtype), so a bf16 model stays 2 bytes per parameter.
TEST(MixedPrecision, SaveDtypeAutoKeepsTheLoadedDtype) {
  const fs::path dir = testing::scratch_dir("save_dtype");
  testing::save_tiny_policy(dir / "base");
  Json config = read_json_file((dir / "base" / "config.json").string());
  config["torch_dtype"] = "bfloat16";
  std::ofstream(dir / "base" / "config.json") << config.dump(2);
  auto dtype_on_disk = [](const std::string& model_dir) {
    const Json saved = read_json_file((fs::path(model_dir) / "config.json").string());
    const auto file = SafetensorsFile::open((fs::path(model_dir) / "model.safetensors").string());
    return saved["torch_dtype"].get<std::string>() + "/" + dtype_name(file.find("model.norm.weight")->dtype);
  };
  EXPECT_EQ(dtype_on_disk(train(dir / "base", dir / "auto", Mode::kMixed, 2, 1e-3, "auto")), "bfloat16/BF16");
  EXPECT_EQ(dtype_on_disk(train(dir / "base", dir / "fp32", Mode::kMixed, 2, 1e-3, "float32")), "float32/F32");
  // Checkpoints hold the fp32 masters whatever save_dtype says (exact resume).
  const fs::path checkpoint = dir / "auto" / "checkpoints" / "train" / "step-2";
  EXPECT_EQ(dtype_on_disk(checkpoint.string()), "float32/F32");
}

// bf16 training under r1kit's counting CPU allocator (src/cpu_memory.h, installed by the r1kit
// binary): oneDNN's bf16 kernels allocate through raw_allocate, which needs plain data
// pointers; a first version of the allocator broke exactly this run (sft of a fresh
// deepseek_v3 in bf16). The live-tensor peak is counted.
TEST(MixedPrecision, Bf16SftUnderTheCountingAllocator) {
  cpu_memory::install();
  const fs::path dir = testing::scratch_dir("bf16_counting");
  std::vector<Json> rows;
  for (int i = 0; i < 20; ++i)
    rows.push_back({{"text", std::to_string(i) + "+" + std::to_string(i % 7) + "=<think> </think>"}});
  write_jsonl_atomic((dir / "sft.jsonl").string(), rows);
  const Json recipe = {{"stages", Json::array({{{"name", "base"},
                                                {"type", "sft"},
                                                {"model_config", testing::tiny_deepseek_v3_model_config()},
                                                {"tokenizer_vocab_size", 300},
                                                {"data", (dir / "sft.jsonl").string()},
                                                {"seq_len", 24},
                                                {"batch_size", 4},
                                                {"max_steps", 2},
                                                {"bf16", true},
                                                {"gradient_checkpointing", true},
                                                {"device", "cpu"}}})}};
  std::ofstream((dir / "recipe.json").string()) << recipe.dump();
  RunArgs args;
  args.recipe = (dir / "recipe.json").string();
  args.out = (dir / "run").string();
  ASSERT_EQ(run_recipe(args), 0);
  EXPECT_TRUE(cpu_memory::installed());
  const std::vector<Json> metrics = read_jsonl(args.out + "/base/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_GT(metrics[1]["memory/peak_bytes"].get<double>(), 0);
  EXPECT_LT(metrics[1]["memory/peak_bytes"].get<double>(), metrics[1]["memory/peak_rss_bytes"].get<double>());
}

}  // namespace
}  // namespace r1kit::pipelines
