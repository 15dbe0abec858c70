// The CPU decode kernels (policy/cpu, rollout/cpu_draw) against ATen computing the same
// math its own way: matmul for the packed GEMM and the experts, SDPA for decode attention,
// softmax + cumsum for the draw. Shapes are deliberately ragged (rows not a multiple of 6,
// columns not of 16, K not of 8) so every edge path runs. Skipped without AVX2 + FMA.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "policy/cpu/decode_attention.h"
#include "policy/cpu/dispatch.h"
#include "policy/cpu/expert_ffn.h"
#include "policy/cpu/packed_gemm.h"
#include "policy/cpu/rms_norm.h"
#include "policy/cpu/rope.h"
#include "rollout/cpu_draw.h"

using namespace r1kit::policy;

namespace {
double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }
}  // namespace

TEST(CpuKernels, PackedGemmMatchesMatmulOnRaggedShapes) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(0);
  for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {5, 37, 40}, {13, 64, 16}, {32, 256, 256}, {7, 9, 33}}) {
    const at::Tensor a = at::randn({m, k});                 // [m, k]
    const at::Tensor w = at::randn({n, k});                 // [n, k] as a Linear weight: B = w^T
    std::vector<float> packed(cpu::packed_size(k, n));
    cpu::pack_b(w.data_ptr<float>(), k, n, /*stride_k=*/1, /*stride_j=*/k, packed.data());
    // Rows gathered in reverse through pointers, into an output with a wider leading dim.
    std::vector<const float*> rows(m);
    for (int64_t r = 0; r < m; ++r) rows[r] = a[m - 1 - r].data_ptr<float>();
    at::Tensor c = at::full({m, n + 3}, 7.0f);
    cpu::gemm_packed(rows.data(), m, packed.data(), k, n, c.data_ptr<float>(), n + 3);
    const at::Tensor ref = at::matmul(a.flip(0).to(at::kDouble), w.t().to(at::kDouble)).to(at::kFloat);
    EXPECT_LT(max_abs_diff(c.narrow(1, 0, n), ref), 1e-4 * std::sqrt(static_cast<double>(k))) << m << "x" << k << "x" << n;
    EXPECT_EQ(c.narrow(1, n, 3).eq(7.0f).all().item<bool>(), true) << "wrote past column n";
  }
}

TEST(CpuKernels, ExpertFfnMatchesPerExpertMatmuls) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(1);
  const int64_t M = 29, D = 40, I = 24, E = 6, K = 2;
  const at::Tensor x = at::randn({M, D});                     // [M, D]
  const at::Tensor gate_up = at::randn({E, 2 * I, D}) * 0.2;  // [E, 2I, D]
  const at::Tensor down = at::randn({E, D, I}) * 0.2;         // [E, D, I]
  const at::Tensor experts = at::randint(0, E - 1, {M, K}, at::kLong);  // expert E-1 gets no token
  const at::Tensor weights = at::rand({M, K});
  at::Tensor counts;
  const at::Tensor y = cpu::expert_ffn(x, experts, weights, cpu::pack_experts(gate_up, down), &counts);
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
  const at::Tensor y = cpu::rms_norm(x.transpose(0, 1), w, 1e-6);        // a non-contiguous input
  const at::Tensor xd = x.transpose(0, 1).to(at::kDouble);
  const at::Tensor ref = w.to(at::kDouble) * (xd * at::rsqrt(xd.pow(2).mean(-1, true) + 1e-6));
  EXPECT_LT(max_abs_diff(y, ref.to(at::kFloat)), 1e-5);
}

TEST(CpuKernels, RopeMatchesRotateHalf) {
  if (!cpu::cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2 + FMA";
  at::manual_seed(5);
  const int64_t N = 3, H = 4, T = 2, Dr = 20;  // half = 10: vector body and tail
  const at::Tensor x = at::randn({N, T, H, Dr}).transpose(1, 2);  // [N, H, T, Dr] as q.transpose(1, 2)
  const at::Tensor cos = at::randn({N, T, Dr}), sin = at::randn({N, T, Dr});
  const at::Tensor y = cpu::rope(x, cos, sin);
  const at::Tensor rotated = at::cat({-x.narrow(-1, Dr / 2, Dr / 2), x.narrow(-1, 0, Dr / 2)}, -1);
  const at::Tensor ref = x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
  EXPECT_LT(max_abs_diff(y, ref), 1e-5);
}
