// FP8 weights (policy/fp8.h) against tests/parity/fp8_reference.py (torch's float8_e4m3fn, the
// release's amax / 448 rule, zero-padded edge blocks), on a random deepseek_v3 whose widths
// are not multiples of 128 (whole and edge blocks): r1kit's e4m3 bytes and scales equal the
// reference's bit for bit; the FP8 directory loads in r1kit as exactly the reference's
// dequantised weights; its logits stay near the fp32 model's (relative error printed); a
// quantised model saved again without fp8 carries no quantization_config.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>

#include "policy/causal_lm.h"
#include "policy/fp8.h"
#include "policy/pretrained.h"
#include "src/safetensors.h"
#include "src/tensor_io.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit::policy {
namespace {

namespace fs = std::filesystem;

ModelConfig fp8_config() {
  ModelConfig c = testing::tiny_config("deepseek_v3");
  c.vocab_size = 64;
  c.hidden_size = 160;  // one whole 128 block + a 32-wide edge
  c.intermediate_size = 300;
  c.moe_intermediate_size = 136;
  c.q_lora_rank = 136;
  c.kv_lora_rank = 144;
  c.num_attention_heads = 2;
  c.qk_nope_head_dim = 64;
  c.qk_rope_head_dim = 32;
  c.v_head_dim = 64;
  c.first_k_dense_replace = 1;
  return c;
}

TEST(Fp8, QuantiserEqualsTheReferenceAndLoadsAsItsDequantisedWeights) {
  const fs::path dir = testing::scratch_dir("fp8");
  auto model = create_model(fp8_config(), 3);
  save_pretrained(*model, (dir / "fp32").string());
  save_pretrained(*model, (dir / "fp8").string(), {.dtype = "bfloat16", .fp8 = true});
  const Json config = read_json_file((dir / "fp8" / "config.json").string());
  EXPECT_EQ(config["quantization_config"]["quant_method"], "fp8");
  EXPECT_EQ(config["quantization_config"]["weight_block_size"], Json({128, 128}));

  // What is FP8 and what stays bf16, as in the release.
  const auto file = SafetensorsFile::open((dir / "fp8" / "model.safetensors").string());
  EXPECT_EQ(file.find("model.layers.0.self_attn.q_b_proj.weight")->dtype, Dtype::F8_E4M3);
  EXPECT_EQ(file.find("model.layers.1.mlp.experts.3.down_proj.weight")->dtype, Dtype::F8_E4M3);
  EXPECT_EQ(file.find("model.layers.1.mlp.shared_experts.up_proj.weight")->dtype, Dtype::F8_E4M3);
  EXPECT_EQ(file.find("model.layers.0.self_attn.q_b_proj.weight_scale_inv")->shape, std::vector<int64_t>({2, 2}));
  EXPECT_EQ(file.find("model.embed_tokens.weight")->dtype, Dtype::BF16);
  EXPECT_EQ(file.find("lm_head.weight")->dtype, Dtype::BF16);
  EXPECT_EQ(file.find("model.layers.1.mlp.gate.weight")->dtype, Dtype::BF16);
  EXPECT_EQ(file.find("model.norm.weight")->dtype, Dtype::BF16);

  const std::string reference = (dir / "reference.safetensors").string();
  ASSERT_EQ(testing::run_python("tests/parity/fp8_reference.py '" + (dir / "fp32").string() + "' '" +
                                (dir / "fp8").string() + "' '" + reference + "'"),
            0)
      << "r1kit's FP8 bytes differ from the reference (or torch is missing in .venv)";

  // r1kit loads the FP8 directory as exactly the reference's block x scale_inv.
  auto loaded = load_pretrained((dir / "fp8").string(), resolve_device("cpu", "float32"));
  save_pretrained(*loaded, (dir / "loaded").string());
  const auto ref = SafetensorsFile::open(reference);
  const auto ours = SafetensorsFile::open((dir / "loaded" / "model.safetensors").string());
  for (const TensorView& t : ref.tensors()) {
    const TensorView* mine = ours.find(t.name);
    ASSERT_NE(mine, nullptr) << t.name;
    EXPECT_TRUE(to_tensor(*mine).equal(to_tensor(t))) << t.name << ": loaded weight differs from the reference";
  }
  EXPECT_GT(ref.tensors().size(), 20u);
  EXPECT_FALSE(read_json_file((dir / "loaded" / "config.json").string()).contains("quantization_config"))
      << "a dequantised model must not claim to be fp8";

  at::NoGradGuard no_grad;
  model->eval(), loaded->eval();
  const at::Tensor tokens = at::arange(2, 40, at::kLong).unsqueeze(0);
  const at::Tensor full = model->forward(tokens), fp8 = loaded->forward(tokens);
  const double relative = ((fp8 - full).norm() / full.norm()).item<double>();
  std::printf("FP8 vs fp32 logits: relative error %.4f (||fp8 - fp32|| / ||fp32||)\n", relative);
  EXPECT_LT(relative, 0.2);
  EXPECT_GT(relative, 0.0);
}

TEST(Fp8, ZeroBlocksAndExtremesRoundTrip) {
  at::Tensor w = at::zeros({130, 129});
  w[0][0] = 448.0 * 3;  // amax of block (0, 0): scale 3, so this is e4m3's max
  w[129][128] = -1e-3;  // a lone value in an edge block
  const Fp8Weight q = quantize_fp8(w);
  EXPECT_EQ(q.scale_inv.sizes(), at::IntArrayRef({2, 2}));
  EXPECT_EQ(q.scale_inv[0][1].item<float>(), 1.0f);  // an all-zero block
  const at::Tensor back = dequantize_fp8(q.weight, q.scale_inv);
  EXPECT_FLOAT_EQ(back[0][0].item<float>(), 448.0f * 3);
  EXPECT_FLOAT_EQ(back[129][128].item<float>(), -1e-3f);  // the block's amax maps to 448 exactly
  EXPECT_TRUE(at::isfinite(back).all().item<bool>());
}

}  // namespace
}  // namespace r1kit::policy
