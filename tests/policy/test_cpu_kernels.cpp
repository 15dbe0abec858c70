// The CPU decode kernels (policy/cpu, rollout/cpu_draw) against ATen computing the same
// math its own way: matmul for the packed GEMM and the experts, SDPA for decode attention,
// softmax + cumsum for the draw. Shapes are deliberately ragged (rows not a multiple of 6,
// columns not of 16, K not of 8) so every edge path runs. Skipped without AVX2 + FMA.
// Then the machinery around them: the packed-weight cache follows in-place updates
// (optimizer steps), and the switch (R1KIT_CPU_KERNELS=0 / set_kernels_enabled) sends every
// caller to ATen with the same results. tests/policy/CMakeLists.txt also runs the
// CpuKernelSwitch cases with R1KIT_CPU_KERNELS=0 (test_cpu_kernels_off).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/cpu/decode_attention.h"
#include "policy/cpu/dispatch.h"
#include "policy/cpu/expert_ffn.h"
#include "policy/cpu/packed_gemm.h"
#include "policy/cpu/packed_linear.h"
#include "policy/cpu/packed_weight.h"
#include "policy/cpu/rms_norm.h"
#include "policy/cpu/rope.h"
#include "policy/layers/linear.h"
#include "policy/layers/moe.h"
#include "policy/pretrained.h"
#include "rollout/cpu_draw.h"
#include "rollout/engine.h"
#include "tests/tiny_policy.h"

using namespace r1kit::policy;
namespace policy = r1kit::policy;

namespace {
double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Sets the switch for one scope and restores it (the other cases expect the environment's).
struct KernelsSetTo {
  bool previous;
  explicit KernelsSetTo(bool on) : previous(cpu::set_kernels_enabled(on)) {}
  ~KernelsSetTo() { cpu::set_kernels_enabled(previous); }
};

bool environment_says_off() {
  const char* v = std::getenv("R1KIT_CPU_KERNELS");
  return v != nullptr && std::string(v) == "0";
}
}  // namespace

TEST(CpuKernels, PackedGemmMatchesMatmulOnRaggedShapes) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(0);
  for (auto [m, k, n] :
       std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {5, 37, 40}, {13, 64, 16}, {32, 256, 256}, {7, 9, 33}}) {
    const at::Tensor a = at::randn({m, k});  // [m, k]
    const at::Tensor w = at::randn({n, k});  // [n, k] as a Linear weight: B = w^T
    std::vector<float> packed(cpu::packed_size(k, n));
    cpu::pack_b(w.data_ptr<float>(), k, n, /*stride_k=*/1, /*stride_j=*/k, packed.data());
    // Rows gathered in reverse through pointers, into an output with a wider leading dim.
    std::vector<const float*> rows(m);
    for (int64_t r = 0; r < m; ++r) rows[r] = a[m - 1 - r].data_ptr<float>();
    at::Tensor c = at::full({m, n + 3}, 7.0f);
    cpu::gemm_packed(rows.data(), m, packed.data(), k, n, c.data_ptr<float>(), n + 3);
    const at::Tensor ref = at::matmul(a.flip(0).to(at::kDouble), w.t().to(at::kDouble)).to(at::kFloat);
    EXPECT_LT(max_abs_diff(c.narrow(1, 0, n), ref), 1e-4 * std::sqrt(static_cast<double>(k)))
        << m << "x" << k << "x" << n;
    EXPECT_EQ(c.narrow(1, n, 3).eq(7.0f).all().item<bool>(), true) << "wrote past column n";
  }
}

TEST(CpuKernels, ExpertFfnMatchesPerExpertMatmuls) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(1);
  const int64_t M = 29, D = 40, I = 24, E = 6, K = 2;
  const at::Tensor x = at::randn({M, D});                               // [M, D]
  const at::Tensor gate_up = at::randn({E, 2 * I, D}) * 0.2;            // [E, 2I, D]
  const at::Tensor down = at::randn({E, D, I}) * 0.2;                   // [E, D, I]
  const at::Tensor experts = at::randint(0, E - 1, {M, K}, at::kLong);  // expert E-1 gets no token
  const at::Tensor weights = at::rand({M, K});
  at::Tensor counts;
  cpu::PackedWeight gate_up_packed, down_packed;
  const at::Tensor y =
      cpu::expert_ffn(x, experts, weights, gate_up_packed.update(gate_up), down_packed.update(down), &counts);
  at::Tensor ref = at::zeros({M, D}, at::kDouble);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t e = experts[m][k].item<int64_t>();
      const at::Tensor gu = at::matmul(x[m].to(at::kDouble), gate_up[e].t().to(at::kDouble));  // [2I]
      const at::Tensor h = at::silu(gu.narrow(0, 0, I)) * gu.narrow(0, I, I);
      ref[m] += weights[m][k].item<double>() * at::matmul(h, down[e].t().to(at::kDouble));
    }
  }
  EXPECT_LT(max_abs_diff(y, ref.to(at::kFloat)), 1e-5);
  EXPECT_TRUE(counts.equal(at::bincount(experts.reshape({-1}), /*weights=*/{}, /*minlength=*/E)));
  EXPECT_EQ(counts[E - 1].item<int64_t>(), 0);
}

TEST(CpuKernels, DecodeAttentionMatchesSdpaOnCacheViews) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(2);
  const int64_t N = 5, H = 8, Hk = 2, S = 19, cap = 23, E = 20, Ev = 36;
  // Cache views as the engine passes them: rows and positions narrowed out of a larger buffer.
  const at::Tensor k = at::randn({N + 2, Hk, cap, E}).narrow(0, 0, N).narrow(2, 0, S);   // [N, Hk, S, E]
  const at::Tensor v = at::randn({N + 2, Hk, cap, Ev}).narrow(0, 0, N).narrow(2, 0, S);  // [N, Hk, S, Ev]
  const at::Tensor q = at::randn({N, H, 1, E});
  // Row n sees keys 0..len_n-1 (the engine's rows have different lengths).
  at::Tensor mask = at::zeros({N, 1, 1, S});
  for (int64_t n = 0; n < N; ++n) mask[n].narrow(-1, 3 + 3 * n, S - 3 - 3 * n).fill_(-INFINITY);
  const double scale = 0.3;
  const at::Tensor out = cpu::decode_attention(q, k, v, mask, scale);  // [N, H, 1, Ev]
  const at::Tensor kr = k.repeat_interleave(H / Hk, /*dim=*/1), vr = v.repeat_interleave(H / Hk, /*dim=*/1);
  const at::Tensor ref = at::scaled_dot_product_attention(q.to(at::kDouble), kr.to(at::kDouble), vr.to(at::kDouble),
                                                          mask.to(at::kDouble), 0.0, false, scale);
  EXPECT_LT(max_abs_diff(out, ref.to(at::kFloat)), 1e-5);

  // Two key parts scored as one (MLA): the same as one concatenated key.
  const int64_t E2 = 12;
  const at::Tensor q2 = at::randn({N, H, 1, E2}), k2 = at::randn({N, Hk, S, E2});
  const at::Tensor out2 = cpu::decode_attention(q, k, v, mask, scale, q2, k2);
  const at::Tensor kc = at::cat({k, k2}, -1).repeat_interleave(H / Hk, 1);
  const at::Tensor ref2 = at::scaled_dot_product_attention(at::cat({q, q2}, -1).to(at::kDouble), kc.to(at::kDouble),
                                                           vr.to(at::kDouble), mask.to(at::kDouble), 0.0, false, scale);
  EXPECT_LT(max_abs_diff(out2, ref2.to(at::kFloat)), 1e-5);
}

TEST(CpuKernels, FusedDrawMatchesSoftmaxAndCumsum) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(3);
  const int64_t N = 64, V = 1003;
  const at::Tensor logits = at::randn({N, V}) * 3;  // [N, V]
  const at::Tensor u = at::rand({N}, at::kDouble);  // [N]
  for (double temperature : {1.0, 0.7}) {
    at::Tensor tokens = at::empty({N}, at::kLong), lp = at::empty({N}, at::kFloat);
    r1kit::rollout::cpu_draw(logits.data_ptr<float>(), N, V, temperature, u.data_ptr<double>(),
                             tokens.data_ptr<int64_t>(), lp.data_ptr<float>());
    const at::Tensor logp = at::log_softmax(logits.to(at::kDouble) / temperature, -1);  // [N, V]
    const at::Tensor cdf = logp.exp().cumsum(-1);
    // The first token whose cumulative probability exceeds u.
    const at::Tensor ref = at::searchsorted(cdf, u.unsqueeze(1), /*out_int32=*/false, /*right=*/true).squeeze(1);
    EXPECT_TRUE(tokens.equal(ref)) << "T=" << temperature;
    EXPECT_LT(max_abs_diff(lp.to(at::kDouble), logp.gather(1, ref.unsqueeze(1)).squeeze(1)), 1e-5);
  }
}

TEST(CpuKernels, RmsNormMatchesHfFormula) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(4);
  const at::Tensor x = at::randn({3, 7, 37}) * 4, w = at::randn({37});  // D = 37: vector body and tail
  const at::Tensor y = cpu::rms_norm(x.transpose(0, 1), w, 1e-6);       // a non-contiguous input
  const at::Tensor xd = x.transpose(0, 1).to(at::kDouble);
  const at::Tensor ref = w.to(at::kDouble) * (xd * at::rsqrt(xd.pow(2).mean(-1, true) + 1e-6));
  EXPECT_LT(max_abs_diff(y, ref.to(at::kFloat)), 1e-5);
}

TEST(CpuKernels, RopeMatchesRotateHalf) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(5);
  const int64_t N = 3, H = 4, T = 2, Dr = 20;                     // half = 10: vector body and tail
  const at::Tensor x = at::randn({N, T, H, Dr}).transpose(1, 2);  // [N, H, T, Dr] as q.transpose(1, 2)
  const at::Tensor cos = at::randn({N, T, Dr}), sin = at::randn({N, T, Dr});
  const at::Tensor y = cpu::rope(x, cos, sin);
  const at::Tensor rotated = at::cat({-x.narrow(-1, Dr / 2, Dr / 2), x.narrow(-1, 0, Dr / 2)}, -1);
  const at::Tensor ref = x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
  EXPECT_LT(max_abs_diff(y, ref), 1e-5);
}

// The cache packs once per weight state: a second update() of the same tensor is a hit; an
// in-place write (what an optimizer step does: same data pointer, new version) and another
// tensor both repack, and the product then uses the new values.
TEST(PackedWeight, RepacksAfterAnInPlaceUpdateAndOnlyThen) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(6);
  const at::Tensor x = at::randn({5, 37});  // [M, in]
  at::Tensor w = at::randn({40, 37});       // [out, in]
  cpu::PackedWeight p;
  EXPECT_LT(max_abs_diff(cpu::packed_linear(x, p.update(w), {}), at::linear(x, w)), 1e-4);
  p.update(w);
  EXPECT_EQ(p.packs(), 1) << "same tensor, same version: the copy already held";

  const at::Tensor y_old = at::linear(x, w);
  const void* data = w.data_ptr();
  w.mul_(-2.0).add_(0.5);  // in place: y changes by O(|y|), far beyond the tolerance
  ASSERT_EQ(w.data_ptr(), data);
  ASSERT_GT(max_abs_diff(at::linear(x, w), y_old), 1.0);
  EXPECT_LT(max_abs_diff(cpu::packed_linear(x, p.update(w), {}), at::linear(x, w)), 1e-4);
  EXPECT_EQ(p.packs(), 2);

  const at::Tensor w2 = w.clone().add_(1.0);  // another tensor (new data pointer, version 0 or 1)
  EXPECT_LT(max_abs_diff(cpu::packed_linear(x, p.update(w2), {}), at::linear(x, w2)), 1e-4);
  EXPECT_EQ(p.packs(), 3);

  // A stack [E, out, in] (the experts): matrix e multiplies as W[e].
  const at::Tensor stack = at::randn({3, 20, 37});  // [E, out, in]
  p.update(stack);
  EXPECT_EQ(p.matrices(), 3);
  EXPECT_EQ(p.in(), 37);
  EXPECT_EQ(p.out(), 20);
  std::vector<const float*> rows(5);
  for (int64_t r = 0; r < 5; ++r) rows[r] = x[r].data_ptr<float>();
  for (int64_t e = 0; e < 3; ++e) {
    at::Tensor c = at::empty({5, 20});
    cpu::gemm_packed(rows.data(), 5, p.matrix(e), 37, 20, c.data_ptr<float>(), 20);
    EXPECT_LT(max_abs_diff(c, at::linear(x, stack[e])), 1e-4) << "expert " << e;
  }
}

// Training then inference, three times: after each optimizer step (AdamW, as the trainers:
// in place, under autograd, so on ATen), a Linear and the MoE experts at inference (the
// kernels) give what ATen gives with the new weights. A cache serving the previous step's
// copy fails: each step moves the outputs by far more than the tolerance (checked).
// (libtorch's SGD would not do: it writes through p.data(), which has a version counter of
// its own, so no cache keyed on versions can see its steps; see packed_weight.h.)
TEST(PackedWeight, LinearAndExpertsServeTheWeightsOfTheLastOptimizerStep) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  const KernelsSetTo on(true);
  at::manual_seed(7);
  const int64_t M = 9, D = 24, I = 12, E = 4, K = 2;
  policy::Linear linear(D, 20, /*bias=*/true);
  policy::Experts experts(E, D, I);
  const at::Tensor x = at::randn({M, D});  // [M, D]
  policy::Routing r;
  r.experts = at::randint(0, E, {M, K}, at::kLong);  // [M, K]
  r.weights = at::rand({M, K});                      // [M, K]
  const at::Tensor target_linear = at::randn({M, 20}), target_experts = at::randn({M, D});
  std::vector<at::Tensor> params = linear.parameters();
  for (const at::Tensor& t : experts.parameters()) params.push_back(t);
  {
    at::NoGradGuard no_grad;  // experts at N(0, 0.2): outputs O(0.1), not O(1e-4)
    for (at::Tensor& t : experts.parameters()) t.mul_(10.0);
  }
  torch::optim::AdamW adamw(params, torch::optim::AdamWOptions(/*lr=*/0.05));

  at::Tensor ref_linear_before, ref_experts_before;
  for (int step = 0; step < 3; ++step) {
    at::Tensor y_linear, y_experts, ref_linear, ref_experts;
    {
      at::NoGradGuard no_grad;
      const int64_t calls = cpu::kernel_calls();
      y_linear = linear.forward(x);
      y_experts = experts.forward(x, r, nullptr);
      EXPECT_EQ(cpu::kernel_calls() - calls, 2) << "step " << step << ": both through the kernels";
      const KernelsSetTo off(false);
      ref_linear = linear.forward(x);
      ref_experts = experts.forward(x, r, nullptr);
      EXPECT_EQ(cpu::kernel_calls() - calls, 2) << "the reference must be ATen";
    }
    EXPECT_LT(max_abs_diff(y_linear, ref_linear), 1e-5) << "step " << step;
    EXPECT_LT(max_abs_diff(y_experts, ref_experts), 1e-5) << "step " << step;
    if (step > 0) {
      EXPECT_GT(max_abs_diff(ref_linear, ref_linear_before), 1e-3) << "the step did not move the linear";
      EXPECT_GT(max_abs_diff(ref_experts, ref_experts_before), 1e-3) << "the step did not move the experts";
    }
    ref_linear_before = ref_linear;
    ref_experts_before = ref_experts;

    adamw.zero_grad();
    const at::Tensor loss = (linear.forward(x) - target_linear).pow(2).sum() +
                            (experts.forward(x, r, nullptr) - target_experts).pow(2).sum();
    loss.backward();
    const void* data = linear.weight.data_ptr();
    adamw.step();
    ASSERT_EQ(linear.weight.data_ptr(), data) << "AdamW updates in place; else this test checks less";
  }
}

// kernels_apply follows R1KIT_CPU_KERNELS (this binary runs once without it and once with
// =0, test_cpu_kernels_off) and never says yes to what the kernels do not handle; each
// kernel counts its calls.
TEST(CpuKernelSwitch, FollowsTheEnvironment) {
  const bool expected = cpu::cpu_has_avx2_fma() && !environment_says_off();
  EXPECT_EQ(cpu::kernels_enabled(), expected);
  const at::Tensor x = at::ones({2, 3});
  at::NoGradGuard no_grad;
  EXPECT_EQ(cpu::kernels_apply(x), expected);
  EXPECT_FALSE(cpu::kernels_apply(x.to(at::kDouble)));
  EXPECT_FALSE(cpu::kernels_apply(x.to(at::kBFloat16)));
  {
    at::AutoGradMode grad(true);
    EXPECT_FALSE(cpu::kernels_apply(x)) << "autograd on: the kernels record no graph";
  }
  if (!cpu::cpu_has_avx2_fma()) return;
  const int64_t calls = cpu::kernel_calls();
  cpu::rms_norm(x, at::ones({3}), 1e-6);
  EXPECT_EQ(cpu::kernel_calls() - calls, 1) << "a kernel called directly counts too";
}

namespace {

policy::ModelConfig tiny(const std::string& type) { return r1kit::testing::tiny_config(type); }

struct Generation {
  r1kit::rollout::Rollouts out;
  int64_t kernel_calls = 0;
};

// Sampled generation (temperature 0.7: the fused draw) of a tiny model, counting kernel calls.
Generation generate(const std::shared_ptr<policy::CausalLM>& model) {
  r1kit::rollout::SamplingOptions o;
  o.temperature = 0.7;
  o.max_new_tokens = 8;
  o.ignore_eos = true;
  o.seed = 4;
  const std::vector<std::vector<int32_t>> prompts = {{2, 9, 14, 3}, {7, 7, 30}, {11, 45, 5, 21, 8, 6}};
  Generation g;
  const int64_t calls = cpu::kernel_calls();
  g.out = r1kit::rollout::Engine(model).generate(prompts, /*group_size=*/2, o);
  g.kernel_calls = cpu::kernel_calls() - calls;
  return g;
}

// The same tokens, and logprobs within float rounding, with the kernels and without; none
// called without. `off_by_environment`: the off run takes the switch as the environment set
// it (R1KIT_CPU_KERNELS=0), else it switches off through set_kernels_enabled.
void expect_off_matches_kernels(bool off_by_environment) {
  for (const std::string type : {"qwen3_moe", "deepseek_v3"}) {
    auto model = policy::create_model(tiny(type), /*seed=*/11);
    {
      c10::InferenceMode guard;
      for (auto& p : model->parameters()) p.mul_(2.0);  // less flat distributions than N(0, 0.02)
    }
    Generation on, off;
    {
      const KernelsSetTo kernels(true);
      on = generate(model);
    }
    if (off_by_environment) {
      ASSERT_FALSE(cpu::kernels_enabled());
      off = generate(model);
    } else {
      const KernelsSetTo kernels(false);
      off = generate(model);
    }
    // Per decode step at least: 2 layers x (norms, q/k/v/o, attention, experts) + lm_head + draw.
    EXPECT_GT(on.kernel_calls, 8 * 10) << type << ": the kernels did not run at all";
    EXPECT_EQ(off.kernel_calls, 0) << type << ": switched off, yet a kernel ran";
    ASSERT_EQ(on.out.rows.size(), off.out.rows.size());
    for (size_t i = 0; i < on.out.rows.size(); ++i) {
      EXPECT_EQ(on.out.rows[i].completion_ids, off.out.rows[i].completion_ids) << type << " row " << i;
      ASSERT_EQ(on.out.rows[i].logprobs.size(), off.out.rows[i].logprobs.size());
      for (size_t t = 0; t < on.out.rows[i].logprobs.size(); ++t) {
        EXPECT_NEAR(on.out.rows[i].logprobs[t], off.out.rows[i].logprobs[t], 1e-4)
            << type << " row " << i << " token " << t;
      }
    }
  }
}

}  // namespace

TEST(CpuKernelSwitch, OffGivesTheKernelsResultsThroughAten) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA: nothing to switch";
  expect_off_matches_kernels(/*off_by_environment=*/false);
}

TEST(CpuKernelSwitch, EnvironmentOffGivesTheKernelsResultsThroughAten) {
  if (!environment_says_off()) GTEST_SKIP() << "runs as test_cpu_kernels_off (R1KIT_CPU_KERNELS=0)";
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA: nothing to switch";
  expect_off_matches_kernels(/*off_by_environment=*/true);
}

// CUDA tensors never take the CPU kernels, whatever the switch says.
TEST(CpuKernels, CudaTensorsStayOnAten) {
  if (!torch::cuda::is_available()) GTEST_SKIP();
  const KernelsSetTo on(true);
  at::NoGradGuard no_grad;
  const int64_t calls = cpu::kernel_calls();
  EXPECT_FALSE(cpu::kernels_apply(at::ones({2, 3}, at::TensorOptions().device(at::kCUDA))));
  policy::Linear linear(8, 4, /*bias=*/false);
  linear.to(at::kCUDA);
  const at::Tensor x = at::randn({3, 8}).to(at::kCUDA);
  EXPECT_LT(max_abs_diff(linear.forward(x).cpu(), at::linear(x.cpu(), linear.weight.cpu())), 1e-5);
  EXPECT_EQ(cpu::kernel_calls(), calls);
}
