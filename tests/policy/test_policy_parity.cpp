// Policy parity against transformers (the independent reference), label `parity`:
//  1. transformers makes a random tiny model of each architecture (deepseek_v3 with MLA,
//     q-LoRA, YaRN, group-limited routing and a planted correction bias; its variant without
//     q-LoRA and half-split RoPE; qwen3_moe saved in the fused v5 expert layout; qwen2_moe;
//     qwen2 with tied embeddings; llama with biases and llama3 RoPE), r1kit loads it, and
//     the fp32 CPU logits agree to 1e-4 max abs;
//  2. r1kit creates a model from the same config, saves it (per-expert, and fused for one),
//     transformers loads it, and its logits equal r1kit's to 1e-4.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "policy/pretrained.h"
#include "src/safetensors.h"
#include "src/tensor_io.h"
#include "tests/test_util.h"

namespace r1kit::policy {
namespace {

const char* const kArchitectures[] = {"deepseek_v3", "deepseek_v3_plain", "qwen3_moe", "qwen2_moe", "qwen2", "llama"};

class PolicyParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::scratch_dir("policy_parity").string();
    ASSERT_EQ(testing::run_python("tests/parity/hf_models.py make " + dir_), 0)
        << "the transformers reference script failed: run scripts/setup (it installs transformers into .venv)";
  }
  static std::string dir_;
};
std::string PolicyParity::dir_;

at::Tensor read_tensor(const std::string& file, const std::string& name) {
  const SafetensorsFile f = SafetensorsFile::open(file);
  const TensorView* v = f.find(name);
  EXPECT_NE(v, nullptr) << file << " has no " << name;
  return to_tensor(*v);
}

TEST_F(PolicyParity, TransformersModelsLoadWithSameLogits) {
  torch::NoGradGuard no_grad;
  for (const char* arch : kArchitectures) {
    SCOPED_TRACE(arch);
    const std::string d = dir_ + "/" + arch;
    auto model = load_pretrained(d, resolve_device("cpu"));
    model->eval();
    const at::Tensor ids = read_tensor(d + "/reference.safetensors", "input_ids");    // [3, 17]
    const at::Tensor expected = read_tensor(d + "/reference.safetensors", "logits");  // [3, 17, V]
    const at::Tensor got = model->forward(ids);
    ASSERT_EQ(got.sizes(), expected.sizes());
    const double diff = (got - expected).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4) << arch << ": max |logits - transformers| = " << diff;
    // A 1e-4 bound means something only if the logits are not all tiny.
    EXPECT_GT(expected.abs().max().item<double>(), 0.1);
  }
}

TEST_F(PolicyParity, R1kitModelsLoadInTransformersWithSameLogits) {
  torch::NoGradGuard no_grad;
  int64_t seed = 1;
  for (const char* arch : kArchitectures) {
    SCOPED_TRACE(arch);
    const ModelConfig config = load_model_config(dir_ + "/" + arch + "/config.json");
    auto model = create_model(config, seed++);
    model->eval();
    const std::string out = dir_ + "/r1kit_" + arch;
    SaveOptions options;
    options.fused_experts = std::string(arch) == "qwen2_moe";  // one model in the v5 fused layout
    save_pretrained(*model, out, options);
    const at::Tensor ids = at::randint(0, config.vocab_size, {2, 13}, at::kLong);
    write_safetensors(out + "/input.safetensors", {to_write("input_ids", ids)});
    ASSERT_EQ(testing::run_python("tests/parity/hf_models.py logits " + out), 0);
    const at::Tensor expected = read_tensor(out + "/hf_logits.safetensors", "logits");
    const double diff = (model->forward(ids) - expected).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4) << arch << ": max |r1kit - transformers(r1kit's save)| = " << diff;
    // And r1kit reads its own save back to the same logits.
    auto again = load_pretrained(out, resolve_device("cpu"));
    EXPECT_TRUE(at::equal(again->forward(ids), model->forward(ids)));
  }
}

}  // namespace
}  // namespace r1kit::policy
