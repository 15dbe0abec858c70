// Hand-checkable sampler cases: top-p / top-k / min-p over p = {0.1, 0.2, 0.3, 0.4}, the
// repetition penalty and temperature on small logit rows, the inverse-CDF draw, and the
// per-row random stream (device twin equals host twin; draws follow the distribution), and
// the scale-only fast path sample() against the chain + draw.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "rollout/sampler.h"

namespace r1kit::rollout {
namespace {

// logits = log p, so softmax gives p back exactly (up to rounding).
at::Tensor logits_of(std::vector<float> p) {
  at::Tensor t = at::tensor(p, at::kFloat).log();
  return t.unsqueeze(0);  // [1, V]
}

void expect_probs(const at::Tensor& logprobs, std::vector<double> expected) {
  ASSERT_EQ(logprobs.size(1), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double got = std::exp(logprobs[0][static_cast<int64_t>(i)].item<double>());
    EXPECT_NEAR(got, expected[i], 1e-6) << "token " << i;
  }
}

TEST(RolloutSampler, TopPKeepsSmallestSetReachingP) {
  // Sorted descending 0.4, 0.3, 0.2, 0.1; mass before each: 0, 0.4, 0.7, 0.9.
  // p = 0.5 keeps {0.4, 0.3} (0.7 >= 0.5 stops at 0.2): renormalised 4/7, 3/7.
  SamplingOptions o;
  o.top_p = 0.5;
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0, 0, 3.0 / 7, 4.0 / 7});
  // p = 0.75 keeps {0.4, 0.3, 0.2}: 4/9, 3/9, 2/9.
  o.top_p = 0.75;
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  // p = 0.3 keeps only the mode.
  o.top_p = 0.3;
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0, 0, 0, 1});
}

TEST(RolloutSampler, TopKKeepsKMostLikely) {
  SamplingOptions o;
  o.top_k = 2;  // {0.3, 0.4} -> 3/7, 4/7
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0, 0, 3.0 / 7, 4.0 / 7});
  o.top_k = 4;  // k = V: no cut
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0.1, 0.2, 0.3, 0.4});
}

TEST(RolloutSampler, MinPDropsBelowFractionOfMode) {
  SamplingOptions o;
  o.min_p = 0.6;  // threshold 0.6 * 0.4 = 0.24: keep {0.3, 0.4} -> 3/7, 4/7
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0, 0, 3.0 / 7, 4.0 / 7});
  o.min_p = 0.3;  // threshold 0.12: drop 0.1 only -> 2/9, 3/9, 4/9
  expect_probs(sampling_logprobs(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), {}, o), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
}

TEST(RolloutSampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  // logits {2, -1, 0.5, 1}, tokens 0 and 1 seen, penalty 2 -> {1, -2, 0.5, 1}.
  SamplingOptions o;
  o.repetition_penalty = 2.0;
  const at::Tensor logits = at::tensor({2.f, -1.f, 0.5f, 1.f}).unsqueeze(0);
  const at::Tensor seen = at::tensor({1, 1, 0, 0}).to(at::kBool).unsqueeze(0);
  const at::Tensor expected = at::log_softmax(at::tensor({1.f, -2.f, 0.5f, 1.f}), 0);
  EXPECT_TRUE(at::allclose(sampling_logprobs(logits, seen, o)[0], expected, 1e-6, 1e-6));
  o.repetition_penalty = 1.0;  // off: plain log_softmax
  EXPECT_TRUE(at::allclose(sampling_logprobs(logits, seen, o)[0], at::log_softmax(logits[0], 0), 1e-6, 1e-6));
}

TEST(RolloutSampler, TemperatureScalesLogits) {
  // logits {0, ln 2} at T = 0.5 -> {0, 2 ln 2}: probs 1/5, 4/5.
  SamplingOptions o;
  o.temperature = 0.5;
  expect_probs(sampling_logprobs(at::tensor({0.f, std::log(2.f)}).unsqueeze(0), {}, o), {0.2, 0.8});
}

TEST(RolloutSampler, InverseCdfDraw) {
  // CDF {0.1, 0.3, 0.6, 1.0}: u = 0.05 -> 0, 0.25 -> 1, 0.59 -> 2, 0.99 -> 3.
  const at::Tensor lp = at::log_softmax(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), -1).expand({4, 4}).contiguous();
  const Draw d = draw(lp, at::tensor({0.05f, 0.25f, 0.59f, 0.99f}), /*greedy=*/false);
  EXPECT_EQ(d.tokens[0].item<int64_t>(), 0);
  EXPECT_EQ(d.tokens[1].item<int64_t>(), 1);
  EXPECT_EQ(d.tokens[2].item<int64_t>(), 2);
  EXPECT_EQ(d.tokens[3].item<int64_t>(), 3);
  EXPECT_NEAR(d.logprobs[2].item<double>(), std::log(0.3), 1e-6);
  // A cut token is never drawn, whatever u: with top_k 1 every u gives the mode.
  SamplingOptions o;
  o.top_k = 1;
  const at::Tensor cut = sampling_logprobs(lp, {}, o);
  const Draw dc = draw(cut, at::tensor({0.0f, 0.25f, 0.59f, 0.9999999f}), false);
  EXPECT_TRUE(dc.tokens.eq(3).all().item<bool>());
  EXPECT_NEAR(dc.logprobs[0].item<double>(), 0.0, 1e-7);
  // Greedy = argmax.
  EXPECT_EQ(draw(lp, at::tensor({0.05f, 0.25f, 0.59f, 0.99f}), true).tokens[0].item<int64_t>(), 3);
}

// sample() skips the [N, V] logprobs when the chain only scales; it must draw the tokens
// draw(sampling_logprobs()) draws and report the same logprobs. CDF {0.1, 0.3, 0.6, 1.0}:
// u = 0.05 -> 0, 0.25 -> 1, 0.59 -> 2, 0.99 -> 3; at T = 0.5 p ~ {1, 4, 9, 16} / 30, CDF
// {0.033, 0.167, 0.467, 1}: u = 0.05 -> 1, 0.25 -> 2, 0.59 -> 3, 0.99 -> 3.
TEST(RolloutSampler, SampleEqualsChainThenDraw) {
  const at::Tensor logits = (logits_of({0.1f, 0.2f, 0.3f, 0.4f}) + 2.0f).expand({4, 4}).contiguous();
  const at::Tensor u = at::tensor({0.05f, 0.25f, 0.59f, 0.99f});
  for (double temperature : {1.0, 0.5}) {
    SamplingOptions o;
    o.temperature = temperature;
    const Draw fast = sample(logits, {}, o, u);
    const Draw ref = draw(sampling_logprobs(logits, {}, o), u, /*greedy=*/false);
    EXPECT_TRUE(fast.tokens.equal(ref.tokens)) << "T " << temperature << ": " << fast.tokens << " vs " << ref.tokens;
    EXPECT_TRUE(at::allclose(fast.logprobs, ref.logprobs, 0.0, 1e-6)) << "T " << temperature;
  }
  EXPECT_EQ(sample(logits, {}, SamplingOptions{}, u).tokens[2].item<int64_t>(), 2);
  EXPECT_NEAR(sample(logits, {}, SamplingOptions{}, u).logprobs[2].item<double>(), std::log(0.3), 1e-6);
  SamplingOptions half;
  half.temperature = 0.5;
  EXPECT_EQ(sample(logits, {}, half, u).tokens[0].item<int64_t>(), 1);
  // A processor that cuts (top_k 1) goes through the chain: every u gives the mode.
  SamplingOptions cut;
  cut.top_k = 1;
  EXPECT_TRUE(sample(logits, {}, cut, u).tokens.eq(3).all().item<bool>());
  // 40000 draws follow p within 0.01 (4.5 standard deviations), as for draw().
  const int64_t n = 40000;
  const at::Tensor keys = at::full({n}, static_cast<int64_t>(row_key(prompt_seed(5, 0), 0)), at::kLong);
  const at::Tensor many =
      sample(logits.narrow(0, 0, 1).expand({n, 4}), {}, SamplingOptions{}, row_uniforms(keys, at::arange(n, at::kLong)))
          .tokens;
  const at::Tensor freq = at::bincount(many, {}, 4).to(at::kDouble) / n;
  const double expected[] = {0.1, 0.2, 0.3, 0.4};
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(freq[i].item<double>(), expected[i], 0.01) << "token " << i;
}

TEST(RolloutSampler, RowStreamsAreKeyedAndMatchHost) {
  const uint64_t k0 = row_key(prompt_seed(7, 0), 0), k1 = row_key(prompt_seed(7, 0), 1);
  const uint64_t k2 = row_key(prompt_seed(7, 1), 0), k3 = row_key(prompt_seed(8, 0), 0);
  EXPECT_NE(k0, k1);
  EXPECT_NE(k0, k2);
  EXPECT_NE(k0, k3);
  const at::Tensor keys =
      at::tensor({static_cast<int64_t>(k0), static_cast<int64_t>(k1), static_cast<int64_t>(k2)}, at::kLong);
  const at::Tensor steps = at::tensor({int64_t{0}, int64_t{5}, int64_t{123456}}, at::kLong);
  const at::Tensor u = row_uniforms(keys, steps);
  EXPECT_EQ(u[0].item<float>(), static_cast<float>(row_uniform(k0, 0)));
  EXPECT_EQ(u[1].item<float>(), static_cast<float>(row_uniform(k1, 5)));
  EXPECT_EQ(u[2].item<float>(), static_cast<float>(row_uniform(k2, 123456)));
}

TEST(RolloutSampler, DrawsFollowTheDistribution) {
  // 40000 draws of one row's stream from {0.1, 0.2, 0.3, 0.4}: frequencies within 0.01
  // (4.5 standard deviations of a binomial at n = 40000).
  const int64_t n = 40000;
  const uint64_t key = row_key(prompt_seed(3, 0), 0);
  const at::Tensor keys = at::full({n}, static_cast<int64_t>(key), at::kLong);
  const at::Tensor u = row_uniforms(keys, at::arange(n, at::kLong));
  const at::Tensor lp = at::log_softmax(logits_of({0.1f, 0.2f, 0.3f, 0.4f}), -1).expand({n, 4}).contiguous();
  const at::Tensor counts = at::bincount(draw(lp, u, false).tokens, {}, 4).to(at::kDouble) / n;
  const double expected[] = {0.1, 0.2, 0.3, 0.4};
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(counts[i].item<double>(), expected[i], 0.01) << "token " << i;
}

TEST(RolloutSampler, OptionsParseAndRejectUnknownKeys) {
  const SamplingOptions o = parse_sampling_options(
      Json::parse(
          R"({"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 64, "stop_strings": ["</answer>"], "seed": 3})"),
      "recipe.json: rollout.sampling");
  EXPECT_DOUBLE_EQ(o.temperature, 0.6);
  EXPECT_DOUBLE_EQ(o.top_p, 0.95);
  EXPECT_EQ(o.max_new_tokens, 64);
  EXPECT_EQ(o.stop_strings, std::vector<std::string>{"</answer>"});
  EXPECT_EQ(o.seed, 3u);
  try {
    parse_sampling_options(Json::parse(R"({"temprature": 0.6})"), "recipe.json: rollout.sampling");
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("temprature"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("recipe.json"), std::string::npos) << e.what();
  }
  try {
    parse_sampling_options(Json::parse(R"({"top_p": 0})"), "r.json");
    FAIL() << "top_p 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit::rollout
