// LoRA (policy/lora.h) against PEFT (tests/parity/lora_parity.py), fp32, on a tiny qwen3_moe
// (GQA projections; MoE blocks stay frozen), a tiny deepseek_v3 (MLA projections) and a tiny
// dense llama (attention and MLP projections): an adapter r1kit trains-to-be (random
// A and B) loaded by peft onto transformers' model gives r1kit's logits; an adapter PEFT
// makes loads in r1kit with PEFT's logits; the merged model equals base + adapters; with the
// adapters off the model is its base exactly; only the adapters train.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>

#include "policy/causal_lm.h"
#include "policy/lora.h"
#include "policy/pretrained.h"
#include "src/safetensors.h"
#include "src/tensor_io.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit::policy {
namespace {

namespace fs = std::filesystem;

const std::vector<int64_t> kIds = {3, 17, 5, 22, 9, 14, 30, 2, 11, 7};

at::Tensor logits_of(CausalLM& model) {
  at::NoGradGuard no_grad;
  model.eval();
  return model.forward(at::tensor(kIds, at::kLong).unsqueeze(0))[0];  // [T, V]
}

at::Tensor peft_logits(const std::string& base, const std::string& adapter, const fs::path& out) {
  std::string ids;
  for (int64_t t : kIds) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  EXPECT_EQ(testing::run_python("tests/parity/lora_parity.py logits '" + base + "' '" + adapter + "' " + ids + " '" +
                                out.string() + "'"),
            0)
      << "tests/parity/lora_parity.py failed (are transformers and peft in .venv?)";
  const SafetensorsFile f = SafetensorsFile::open(out.string());
  return to_tensor(f.tensors().at(0));
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// A base model directory of `type` (transformers loads it).
std::string base_dir(const std::string& type) {
  const fs::path dir = testing::scratch_dir("lora_base_" + type);
  if (type == "qwen3_moe") {
    testing::save_tiny_policy(dir);
  } else {
    ModelConfig c = testing::tiny_config(type);
    if (type == "deepseek_v3") c.num_key_value_heads = c.num_attention_heads;  // MLA: no KV-head grouping
    if (type == "llama") c.num_experts = 0;                                    // dense
    save_pretrained(*create_model(c, 5), dir.string());
  }
  return dir.string();
}

// Adapters with random B too, as training would leave them (a fresh B is zero).
void randomize_adapters(CausalLM& model) {
  at::NoGradGuard no_grad;
  at::manual_seed(11);
  for (at::Tensor& t : trainable_parameters(model)) t.copy_(at::randn_like(t) * 0.2);
}

class LoraParity : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraParity, R1kitAdapterInPeftAndPeftAdapterInR1kit) {
  const std::string base = base_dir(GetParam());
  const fs::path tmp = testing::scratch_dir("lora_" + GetParam());
  auto model = load_pretrained(base, resolve_device("cpu"));
  const at::Tensor base_logits = logits_of(*model);
  EXPECT_LT(max_diff(base_logits, peft_logits(base, "-", tmp / "base_logits.safetensors")), 1e-4)
      << GetParam() << ": the base models differ (not a LoRA matter)";
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  const std::vector<std::string> adapted = add_lora(*model, o, /*seed=*/1);
  EXPECT_FALSE(adapted.empty());
  // A fresh adapter (B = 0) changes nothing.
  EXPECT_TRUE(at::equal(logits_of(*model), base_logits));
  randomize_adapters(*model);
  const at::Tensor ours = logits_of(*model);
  EXPECT_GT(max_diff(ours, base_logits), 1e-3) << "the adapters do not act";

  // r1kit's adapter, loaded by peft onto transformers' model.
  const std::string adapter = (tmp / "r1kit_adapter").string();
  save_peft_adapter(*model, adapter, base);
  const at::Tensor theirs = peft_logits(base, adapter, tmp / "peft_logits.safetensors");
  EXPECT_LT(max_diff(ours, theirs), 1e-4) << GetParam() << ": r1kit's adapter in peft";
  // And read back by r1kit (load_pretrained of the adapter directory).
  EXPECT_LT(max_diff(logits_of(*load_pretrained(adapter, resolve_device("cpu"))), ours), 1e-6);

  // Off: exactly the base.
  {
    AdaptersDisabled off(*model);
    EXPECT_TRUE(at::equal(logits_of(*model), base_logits));
  }
  EXPECT_TRUE(at::equal(logits_of(*model), ours));

  // Only the adapters train; the base has no gradient.
  model->train();
  model->forward(at::tensor(kIds, at::kLong).unsqueeze(0)).sum().backward();
  for (const at::Tensor& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
  for (const at::Tensor& t : trainable_parameters(*model)) EXPECT_TRUE(t.grad().defined());

  // Merged: a plain model with W + scale * B A, the same logits.
  auto merged = load_pretrained(adapter, resolve_device("cpu"));
  merge_lora(*merged);
  EXPECT_FALSE(has_lora(*merged));
  EXPECT_LT(max_diff(logits_of(*merged), ours), 1e-5);

  // PEFT's own adapter (all-linear, random B), loaded in r1kit.
  const std::string made = (tmp / "peft_adapter").string();
  // MoE models: PEFT's all-linear also adapts the routed experts (r1kit has no adapters for
  // those); attention's projections there, every Linear layer of the dense model.
  const std::string targets = GetParam() == "qwen3_moe"     ? "q_proj,k_proj,v_proj,o_proj"
                              : GetParam() == "deepseek_v3" ? "q_a_proj,q_b_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj"
                                                            : "all-linear";
  ASSERT_EQ(testing::run_python("tests/parity/lora_parity.py make-adapter '" + base + "' '" + made + "' 4 " + targets),
            0);
  const at::Tensor peft_made = peft_logits(base, made, tmp / "peft_made_logits.safetensors");
  auto loaded = load_pretrained(made, resolve_device("cpu"));
  EXPECT_TRUE(has_lora(*loaded));
  EXPECT_GT(max_diff(peft_made, base_logits), 1e-3);
  EXPECT_LT(max_diff(logits_of(*loaded), peft_made), 1e-4) << GetParam() << ": peft's adapter in r1kit";
}

INSTANTIATE_TEST_SUITE_P(Architectures, LoraParity, ::testing::Values("qwen3_moe", "deepseek_v3", "llama"));

// A bf16 base with fp32 adapters (the memory-saving layout on a GPU): forward and backward
// run, the adapters' gradients are fp32, the base has none.
TEST(Lora, Bf16BaseWithFp32Adapters) {
  auto model = create_model(testing::tiny_config("qwen3_moe"), 1);
  model->to(at::kBFloat16);
  LoraOptions o;
  o.r = 4;
  add_lora(*model, o, 0);
  model->train();
  const at::Tensor logits = model->forward(at::tensor(kIds, at::kLong).unsqueeze(0));  // [1, T, V]
  EXPECT_EQ(logits.scalar_type(), at::kBFloat16);
  logits.to(at::kFloat).sum().backward();
  for (const at::Tensor& t : trainable_parameters(*model)) {
    ASSERT_TRUE(t.grad().defined());
    EXPECT_EQ(t.grad().scalar_type(), at::kFloat);
  }
  for (const at::Tensor& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Lora, TargetsAndErrors) {
  auto model = create_model(testing::tiny_config("qwen3_moe"), 1);
  LoraOptions o;
  o.r = 2;
  o.target_modules = {"q_proj", "v_proj"};
  const auto names = add_lora(*model, o, 0);
  ASSERT_EQ(names.size(), 4u);  // 2 layers x (q_proj, v_proj)
  EXPECT_EQ(names[0], "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(num_trainable_parameters(*model), 2 * (2 * (32 + 32) + 2 * (32 + 16)));
  auto other = create_model(testing::tiny_config("qwen3_moe"), 1);
  o.target_modules = {"qkv"};
  try {
    add_lora(*other, o, 0);
    FAIL() << "a target matching nothing was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lora_target_modules: 'qkv' matches no Linear layer"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit::policy
