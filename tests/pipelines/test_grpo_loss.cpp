// GRPO advantages and loss, small enough to check by hand, plus the DeepSeekMath gradient
// identity (appendix A.1.6) through a real policy by autograd.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "pipelines/grpo/advantages.h"
#include "pipelines/grpo/loss.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"

namespace r1kit::pipelines::grpo {
namespace {

TEST(GrpoAdvantages, GroupOf1001) {
  // mean 0.5; unbiased std = sqrt(((.5^2) * 4) / 3) = 0.57735; A = +-0.5 / (0.57735 + 1e-4).
  const Advantages a = group_advantages(at::tensor({1.f, 0.f, 0.f, 1.f}), /*G=*/4);
  const float x = 0.5f / (std::sqrt(1.f / 3.f) + 1e-4f);
  EXPECT_TRUE(at::allclose(a.values, at::tensor({x, -x, -x, x}), 1e-5, 1e-6));
  EXPECT_EQ(a.num_zero_std, 0);
}

TEST(GrpoAdvantages, ZeroSpreadGroupsGiveZeroAndAreCounted) {
  // Group 0 {1,0,0,1} as above; group 1 {1,1,1,1} has no spread: A = 0, counted once.
  const Advantages a = group_advantages(at::tensor({1.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 1.f}), 4);
  EXPECT_TRUE(at::allclose(a.values.narrow(0, 4, 4), at::zeros({4})));
  EXPECT_EQ(a.num_zero_std, 1);
  EXPECT_TRUE(a.zero_std_group[1].item<bool>());
}

TEST(GrpoAdvantages, ScaleNoneAndBatch) {
  // none: mean-centring only (Dr. GRPO): {1,0,0,1} -> {.5,-.5,-.5,.5}.
  AdvantageOptions none;
  none.scale_rewards = ScaleRewards::kNone;
  EXPECT_TRUE(at::allclose(group_advantages(at::tensor({1.f, 0.f, 0.f, 1.f}), 4, none).values,
                           at::tensor({.5f, -.5f, -.5f, .5f})));
  // batch: group means {0.5, 3}, batch std of {1,0,3,3} = sqrt(((1-1.75)^2+(0-1.75)^2+2*1.25^2)/3) = 1.5
  AdvantageOptions batch;
  batch.scale_rewards = ScaleRewards::kBatch;
  const Advantages a = group_advantages(at::tensor({1.f, 0.f, 3.f, 3.f}), 2, batch);
  EXPECT_TRUE(at::allclose(a.values, at::tensor({.5f, -.5f, 0.f, 0.f}) / (1.5f + 1e-4f), 1e-5, 1e-6));
}

// The 2x3 example: logprobs_new == logprobs_old (ratio 1), A = {2, -1},
// mask {{1,1,1},{1,1,0}}: per-token loss -A = {-2,-2,-2 | 1,1,-}.
LossInputs two_by_three() {
  LossInputs in;
  in.logprobs_old = at::full({2, 3}, -1.0f);
  in.logprobs_new = in.logprobs_old.clone().requires_grad_(true);
  in.advantages = at::tensor({2.f, -1.f});
  in.mask = at::tensor({1.f, 1.f, 1.f, 1.f, 1.f, 0.f}).view({2, 3});
  return in;
}

// The loss type as a recipe spells it (an unknown one is rejected by the parse).
LossOptions loss_options(const std::string& type) {
  LossOptions o;
  const Json j = {{"loss_type", type}};
  JsonFields f(j, "test");
  read_loss_options(f, o);
  return o;
}

double loss_of(const std::string& type) {
  LossOptions o = loss_options(type);
  o.max_completion_length = 4;
  return grpo_loss(two_by_three(), o).loss.item<double>();
}

TEST(GrpoLoss, EachLossTypeOnTwoByThree) {
  EXPECT_NEAR(loss_of("grpo"), (-2.0 + 1.0) / 2, 1e-6);           // sequence means -2 and 1, then their mean
  EXPECT_NEAR(loss_of("bnpo"), (-6.0 + 2.0) / 5, 1e-6);           // 5 tokens
  EXPECT_NEAR(loss_of("dapo"), (-6.0 + 2.0) / 5, 1e-6);           // = bnpo with one minibatch
  EXPECT_NEAR(loss_of("dr_grpo"), (-6.0 + 2.0) / (2 * 4), 1e-6);  // 2 sequences x max length 4
  EXPECT_THROW(loss_of("ppo"), Error);
}

TEST(GrpoLoss, MinibatchesSumToTheBatchLoss) {
  // Split the 2x3 batch into its two rows: with the batch normalisers, the parts add up.
  for (const std::string type : {"grpo", "dapo", "dr_grpo"}) {
    SCOPED_TRACE(type);
    LossOptions o = loss_options(type);
    o.max_completion_length = 4;
    const LossInputs all = two_by_three();
    double sum = 0;
    for (int64_t i = 0; i < 2; ++i) {
      LossInputs part;
      part.logprobs_old = all.logprobs_old.narrow(0, i, 1);
      part.logprobs_new = all.logprobs_new.narrow(0, i, 1);
      part.advantages = all.advantages.narrow(0, i, 1);
      part.mask = all.mask.narrow(0, i, 1);
      part.batch_sequences = 2;
      part.batch_tokens = 5;
      sum += grpo_loss(part, o).loss.item<double>();
    }
    EXPECT_NEAR(sum, loss_of(type), 1e-6);
  }
}

// One token with ratio r = exp(new - old) and advantage A; eps = 0.2. Returns
// (loss, d loss / d logp_new).
std::pair<double, double> one_token(double r, double A) {
  LossInputs in;
  in.logprobs_old = at::zeros({1, 1});
  in.logprobs_new = at::full({1, 1}, std::log(r)).requires_grad_(true);
  in.advantages = at::full({1}, A);
  in.mask = at::ones({1, 1});
  const LossOutput out = grpo_loss(in, LossOptions{});
  const auto g = torch::autograd::grad({out.loss}, {in.logprobs_new}, {}, false, false, /*allow_unused=*/true);
  return {out.loss.item<double>(), g[0].defined() ? g[0].item<double>() : 0.0};
}

TEST(GrpoLoss, ClipAtOnePlusMinusEpsilon) {
  // r = 1.5, A = +1: min(1.5, 1.2) = 1.2 -> the clip is active, no gradient.
  auto [l1, g1] = one_token(1.5, 1.0);
  EXPECT_NEAR(l1, -1.2, 1e-6);
  EXPECT_EQ(g1, 0.0);
  // r = 1.5, A = -1: min(-1.5, -1.2) = -1.5 -> unclipped, d(-r*A)/dlogp = -A*r = 1.5.
  auto [l2, g2] = one_token(1.5, -1.0);
  EXPECT_NEAR(l2, 1.5, 1e-6);
  EXPECT_NEAR(g2, 1.5, 1e-6);
  // r = 0.5, A = +1: min(0.5, 0.8) = 0.5 -> unclipped, gradient -A*r = -0.5.
  auto [l3, g3] = one_token(0.5, 1.0);
  EXPECT_NEAR(l3, -0.5, 1e-6);
  EXPECT_NEAR(g3, -0.5, 1e-6);
  // r = 0.5, A = -1: min(-0.5, -0.8) = -0.8 -> clipped, no gradient.
  auto [l4, g4] = one_token(0.5, -1.0);
  EXPECT_NEAR(l4, 0.8, 1e-6);
  EXPECT_EQ(g4, 0.0);
}

TEST(GrpoLoss, ClipHigherAndClipFractions) {
  LossInputs in;
  in.logprobs_old = at::zeros({2, 1});
  in.logprobs_new = at::log(at::tensor({1.25f, 0.7f})).view({2, 1});
  in.advantages = at::tensor({1.f, -1.f});
  in.mask = at::ones({2, 1});
  LossOptions o;
  o.epsilon_high = 0.28;  // DAPO clip-higher: 1.25 < 1.28 is no longer clipped
  LossOutput out = grpo_loss(in, o);
  EXPECT_NEAR(out.loss.item<double>(), (-1.25 + 0.8) / 2, 1e-6);
  EXPECT_NEAR(out.clip_high_fraction, 0.0, 1e-9);
  EXPECT_NEAR(out.clip_low_fraction, 0.5, 1e-9);  // 0.7 < 0.8 with A < 0
  o.epsilon_high = 0;                             // symmetric 0.2: 1.25 is clipped
  out = grpo_loss(in, o);
  EXPECT_NEAR(out.clip_high_fraction, 0.5, 1e-9);
}

TEST(GrpoLoss, SequenceLevelRatioIsGeometricMean) {
  // GSPO: log ratios {ln 2, 0} -> sequence ratio exp(ln2 / 2) = sqrt 2 for both tokens.
  LossInputs in;
  in.logprobs_old = at::zeros({1, 2});
  in.logprobs_new = at::tensor({std::log(2.f), 0.f}).view({1, 2});
  in.advantages = at::tensor({1.f});
  in.mask = at::ones({1, 2});
  LossOptions o;
  o.importance_sampling_level = ImportanceSampling::kSequence;
  o.epsilon = 10;  // no clipping
  EXPECT_NEAR(grpo_loss(in, o).loss.item<double>(), -std::sqrt(2.0), 1e-6);
}

TEST(GrpoLoss, KlIsK3AndNonNegative) {
  // d = log(pi_ref/pi) = {0, ln 2, -ln 2}: k3 = e^d - d - 1 = {0, 1 - ln 2, 0.5 + ln 2 - 1}.
  LossInputs in;
  in.logprobs_new = at::zeros({1, 3});
  in.logprobs_old = at::zeros({1, 3});
  in.logprobs_ref = at::tensor({0.f, std::log(2.f), -std::log(2.f)}).view({1, 3});
  in.advantages = at::zeros({1});
  in.mask = at::ones({1, 3});
  LossOptions o;
  o.beta = 0.5;
  const LossOutput out = grpo_loss(in, o);
  const double k3 = (0 + (1 - std::log(2.0)) + (0.5 + std::log(2.0) - 1)) / 3;
  EXPECT_NEAR(out.kl_mean, k3, 1e-6);
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * k3, 1e-6);  // A = 0: only the KL term
}

// DeepSeekMath A.1.6: with pi_old = pi (one update per rollout), the gradient of the GRPO
// objective is (1/G) sum_i (1/|o_i|) sum_t [A_i + beta (pi_ref/pi - 1)] grad log pi. Check it
// on a real policy's parameters: autograd of grpo_loss must equal the gradient of
// -sum_{i,t} c_{i,t} log pi_{i,t} with c computed from the formula.
TEST(GrpoLoss, GradientMatchesDeepSeekMathFormula) {
  policy::ModelConfig c;
  c.model_type = "qwen3_moe";
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  c.qk_norm = true;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 8;
  auto model = policy::create_model(c, 11);
  const int64_t G = 3, T = 6;
  const at::Tensor seq = at::randint(0, 40, {G, T + 1}, at::kLong);
  const at::Tensor mask =
      at::tensor({1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 1.f})
          .view({G, T});  // |o| = 6, 3, 5
  auto logprobs = [&] {
    const at::Tensor h = model->forward_hidden(seq.narrow(1, 0, T));
    return policy::token_logprobs(h, model->lm_head_weight(), seq.narrow(1, 1, T)).logprobs;
  };
  const at::Tensor lp = logprobs();
  const at::Tensor lp_ref = lp.detach() + 0.3 * at::randn({G, T});  // some other reference policy
  const at::Tensor A = at::tensor({1.f, -0.5f, 0.25f});
  const double beta = 0.04;
  LossInputs in;
  in.logprobs_new = lp;
  in.logprobs_old = lp.detach();
  in.logprobs_ref = lp_ref;
  in.advantages = A;
  in.mask = mask;
  LossOptions o;
  o.loss_type = LossType::kGrpo;
  o.beta = beta;
  const auto params = model->parameters();
  const auto g_loss = torch::autograd::grad({grpo_loss(in, o).loss}, params, {}, false, false, true);

  // c_{i,t} = (1/G)(1/|o_i|)(A_i + beta (pi_ref/pi - 1)) on completion tokens.
  const at::Tensor len = mask.sum(-1, true);
  const at::Tensor coeff = (A.unsqueeze(-1) + beta * (at::exp(lp_ref - lp.detach()) - 1)) * mask / len / G;
  const auto g_formula = torch::autograd::grad({-(coeff * logprobs()).sum()}, params, {}, false, false, true);
  double max_diff = 0, max_grad = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    if (!g_loss[k].defined()) continue;
    max_diff = std::max(max_diff, (g_loss[k] - g_formula[k]).abs().max().item<double>());
    max_grad = std::max(max_grad, g_loss[k].abs().max().item<double>());
  }
  EXPECT_LT(max_diff, 1e-6);
  EXPECT_GT(max_grad, 1e-3);  // the identity is not satisfied trivially by zero gradients
}

}  // namespace
}  // namespace r1kit::pipelines::grpo
