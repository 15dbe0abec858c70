// Activation checkpointing (policy/checkpointing.h) and the chunked KD term
// (policy/logprobs.h token_kl), fp32 on CPU: gradients with checkpointing equal those without
// for deepseek_v3 (MLA, sigmoid router, shared expert) and qwen3_moe with the sequence-wise
// balance loss on; the expert load is counted once; LoRA dropout draws the same masks in the
// recompute; token_kl equals the full log-softmax KL in value and gradient.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <map>

#include "policy/causal_lm.h"
#include "policy/layers/moe.h"
#include "policy/logprobs.h"
#include "policy/lora.h"
#include "policy/pretrained.h"
#include "tests/tiny_policy.h"

namespace r1kit::policy {
namespace {

struct Grads {
  std::map<std::string, at::Tensor> grads;  // by parameter name (LoRA: the adapters, in order)
  std::vector<at::Tensor> loads;            // per MoE block [E]
  double loss = 0;
};

// One training forward + backward of a next-token loss plus the MoE balance loss.
Grads step(CausalLM& model, bool checkpoint, uint64_t seed) {
  model.train();
  model.set_gradient_checkpointing(checkpoint);
  at::manual_seed(seed);                                                                    // LoRA dropout draws
  const at::Tensor tokens = at::randint(2, model.config().vocab_size, {3, 12}, at::kLong);  // [N, T+1]
  const at::Tensor inputs = tokens.narrow(1, 0, 11), targets = tokens.narrow(1, 1, 11);
  const at::Tensor hidden = model.forward_hidden(inputs);  // [3, 11, D]
  const at::Tensor lp = token_logprobs(hidden, model.lm_head_weight(), targets).logprobs;
  const at::Tensor loss = -lp.mean() + model.aux_loss();
  const std::vector<at::Tensor> trained = trainable_parameters(model);
  for (at::Tensor p : trained) p.mutable_grad().reset();
  loss.backward();
  Grads g;
  g.loss = loss.item<double>();
  int i = 0;
  for (const at::Tensor& p : trained) g.grads["t" + std::to_string(i++)] = p.grad().clone();
  for (MoeBlock* m : model.moe_blocks()) g.loads.push_back(m->take_load());
  return g;
}

void expect_equal(const Grads& a, const Grads& b, double tol) {
  EXPECT_NEAR(a.loss, b.loss, tol);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (const auto& [name, g] : a.grads) {
    EXPECT_LE((g - b.grads.at(name)).abs().max().item<double>(), tol) << name;
  }
  ASSERT_EQ(a.loads.size(), b.loads.size());
  for (size_t l = 0; l < a.loads.size(); ++l) EXPECT_TRUE(a.loads[l].equal(b.loads[l])) << "expert load, block " << l;
}

class Checkpointing : public ::testing::TestWithParam<std::string> {};

TEST_P(Checkpointing, GradientsEqualThoseWithout) {
  ModelConfig c = testing::tiny_config(GetParam());
  c.num_hidden_layers = 3;
  c.seq_aux_loss_alpha = 0.01;  // the balance loss must flow through the recompute too
  if (GetParam() == "deepseek_v3") c.first_k_dense_replace = 1;
  auto model = create_model(c, 7);
  const Grads plain = step(*model, false, 1);
  const Grads checkpointed = step(*model, true, 1);
  EXPECT_GT(plain.grads.size(), 10u);
  // Exactly: the first (no-grad) run takes the same ATen ops as the recompute, not the CPU
  // inference kernels (cpu::AtenOnly), so no rounding separates them.
  expect_equal(plain, checkpointed, 0.0);
  // The balance loss's gradient reaches the router through the checkpointed layers.
  double router_grad = 0;
  for (const auto& p : model->named_parameters()) {
    if (p.key().find("mlp.gate.weight") != std::string::npos)
      router_grad += p.value().grad().abs().sum().item<double>();
  }
  EXPECT_GT(router_grad, 0);
}

INSTANTIATE_TEST_SUITE_P(Architectures, Checkpointing, ::testing::Values("qwen3_moe", "deepseek_v3"));

// LoRA with dropout on a frozen base: the embedding output does not require grad, and the
// recompute must draw the first run's dropout masks (a fresh draw gives other gradients).
TEST(CheckpointingLora, DropoutMasksAndFrozenInputs) {
  auto model = create_model(testing::tiny_config("qwen3_moe"), 7);
  add_lora(*model, {.r = 4, .alpha = 8, .dropout = 0.3, .target_modules = {"all-linear"}}, 3);
  for (at::Tensor p : trainable_parameters(*model)) {
    at::NoGradGuard no_grad;
    p.normal_(0, 0.1);  // B starts at 0: give every adapter a gradient path
  }
  const Grads plain = step(*model, false, 5);
  const Grads checkpointed = step(*model, true, 5);
  expect_equal(plain, checkpointed, 1e-6);
  const Grads other_draw = step(*model, true, 6);
  double differ = 0;
  for (const auto& [name, g] : plain.grads) differ += (g - other_draw.grads.at(name)).abs().sum().item<double>();
  EXPECT_GT(differ, 1e-4) << "other dropout masks should give other gradients (the test would not see a bad replay)";
}

// Without gradients (scoring, generation) or in eval mode nothing is checkpointed.
TEST(CheckpointingEval, NoGradForwardIsThePlainOne) {
  auto model = create_model(testing::tiny_config("qwen3_moe"), 7);
  model->set_gradient_checkpointing(true);
  at::NoGradGuard no_grad;
  const at::Tensor tokens = at::arange(2, 12, at::kLong).unsqueeze(0);
  model->eval();
  const at::Tensor a = model->forward(tokens);
  model->set_gradient_checkpointing(false);
  EXPECT_TRUE(a.equal(model->forward(tokens)));
}

TEST(TokenKl, EqualsTheFullLogSoftmaxKlAndItsGradient) {
  at::manual_seed(0);
  const int64_t N = 2, T = 7, D = 6, Dt = 5, V = 40;
  const at::Tensor h = at::randn({N, T, D}, at::kDouble).to(at::kFloat).requires_grad_(true);
  const at::Tensor w = at::randn({V, D}).requires_grad_(true);
  const at::Tensor ht = at::randn({N, T, Dt}), wt = at::randn({V, Dt});
  const double tau = 1.7;
  const at::Tensor g = at::rand({N, T});  // weights per position, as a mask would be
  // Reference: both [N, T, V] log-softmaxes whole.
  const at::Tensor lp_s = at::log_softmax(at::matmul(h, w.t()) / tau, -1);
  const at::Tensor lp_t = at::log_softmax(at::matmul(ht, wt.t()) / tau, -1);
  const at::Tensor ref = (lp_t.exp() * (lp_t - lp_s)).sum(-1);  // [N, T]
  const auto ref_grads = torch::autograd::grad({(ref * g).sum()}, {h, w});
  const at::Tensor kl = token_kl(h, w, ht, wt, {.temperature = tau, .chunk_rows = 3});  // chunks of 3 positions
  EXPECT_LE((kl - ref).abs().max().item<double>(), 1e-6);
  const auto grads = torch::autograd::grad({(kl * g).sum()}, {h, w});
  EXPECT_LE((grads[0] - ref_grads[0]).abs().max().item<double>(), 1e-6);
  EXPECT_LE((grads[1] - ref_grads[1]).abs().max().item<double>(), 1e-6);
  EXPECT_GE(kl.min().item<double>(), -1e-6);  // a KL
}

}  // namespace
}  // namespace r1kit::policy
