// Routed experts on packed weights (see expert_ffn.h).
#include "policy/cpu/expert_ffn.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <vector>

#include "policy/cpu/avx2_math.h"
#include "policy/cpu/dispatch.h"
#include "policy/cpu/packed_gemm.h"
#include "policy/cpu/packed_weight.h"

namespace r1kit::policy::cpu {
namespace {

// h[j] = silu(g[j]) * u[j] = g[j] / (1 + exp(-g[j])) * u[j], in place over g.
R1KIT_AVX2 void silu_mul(float* g, const float* u, int64_t n) {
  int64_t j = 0;
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    const __m256 gv = _mm256_loadu_ps(g + j);
    const __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv))));
    _mm256_storeu_ps(g + j, _mm256_mul_ps(_mm256_mul_ps(gv, sig), _mm256_loadu_ps(u + j)));
  }
  for (; j < n; ++j) g[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
}

// o = sum_k w[k] * ys[k][:], k in order.
R1KIT_AVX2 void weighted_sum(float* o, const float* const* ys, const float* w, int64_t K, int64_t D) {
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; ++k) acc = _mm256_fmadd_ps(_mm256_set1_ps(w[k]), _mm256_loadu_ps(ys[k] + d), acc);
    _mm256_storeu_ps(o + d, acc);
  }
  for (; d < D; ++d) {
    float acc = 0.0f;
    for (int64_t k = 0; k < K; ++k) acc = std::fma(w[k], ys[k][d], acc);
    o[d] = acc;
  }
}

}  // namespace

at::Tensor expert_ffn(const at::Tensor& x_in, const at::Tensor& experts_in, const at::Tensor& weights_in,
                      const PackedWeight& gate_up, const PackedWeight& down, at::Tensor* counts_out) {
  RECORD_FUNCTION("r1kit::expert_ffn", std::vector<c10::IValue>());  // named in profiler traces
  note_kernel_call();
  const at::Tensor x = x_in.contiguous();                             // [N*T, D]
  const at::Tensor experts = experts_in.to(at::kLong).contiguous();   // [N*T, K]
  const at::Tensor weights = weights_in.to(at::kFloat).contiguous();  // [N*T, K]
  // gate_up: E matrices [D x 2I] (B = W^T of [2I, D]); down: E matrices [I x D].
  const int64_t M = x.size(0), D = gate_up.in(), I = down.in(), K = experts.size(1), E = gate_up.matrices();
  TORCH_CHECK(gate_up.out() == 2 * I && down.out() == D && down.matrices() == E, "expert_ffn: packed gate_up [", E,
              ", ", gate_up.out(), ", ", D, "] and down [", down.matrices(), ", ", down.out(), ", ", I,
              "] are not [E, 2I, D] and [E, D, I]");
  TORCH_CHECK(
      x.scalar_type() == at::kFloat && x.size(1) == D && experts.size(0) == M && weights.sizes() == experts.sizes(),
      "expert_ffn: x ", x.sizes(), ", experts ", experts.sizes(), ", weights ", weights.sizes(), " for D=", D);
  const int64_t* ex = experts.data_ptr<int64_t>();

  // Counting sort of the M*K pairs by expert (stable: token order within an expert).
  at::Tensor counts = at::zeros({E}, at::kLong);  // [E]
  int64_t* cnt = counts.data_ptr<int64_t>();
  for (int64_t i = 0; i < M * K; ++i) {
    TORCH_CHECK(ex[i] >= 0 && ex[i] < E, "expert_ffn: expert id ", ex[i], " outside [0, ", E, ")");
    ++cnt[ex[i]];
  }
  std::vector<int64_t> start(E + 1, 0);  // [E+1] first sorted row of each expert
  for (int64_t e = 0; e < E; ++e) start[e + 1] = start[e] + cnt[e];
  std::vector<int64_t> slot_of_pair(M * K);  // [N*T*K] sorted row of pair (m, k)
  std::vector<const float*> rows(M * K);     // [N*T*K] input row of each sorted row
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    const float* xp = x.data_ptr<float>();
    for (int64_t i = 0; i < M * K; ++i) {
      const int64_t s = next[ex[i]]++;
      slot_of_pair[i] = s;
      rows[s] = xp + (i / K) * D;
    }
  }

  // gate_up into h [N*T*K, 2I], SiLU(gate) * up into its first I columns, down into y [N*T*K, D].
  at::Tensor h = at::empty({M * K, 2 * I}, at::kFloat);
  at::Tensor y = at::empty({M * K, D}, at::kFloat);
  float* hp = h.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, E, /*grain_size=*/1, [&](int64_t e0, int64_t e1) {
    std::vector<const float*> h_rows;
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t n = start[e + 1] - start[e];
      if (n == 0) continue;
      float* he = hp + start[e] * 2 * I;
      gemm_packed(rows.data() + start[e], n, gate_up.matrix(e), D, 2 * I, he, 2 * I);
      h_rows.resize(n);
      for (int64_t r = 0; r < n; ++r) {
        silu_mul(he + r * 2 * I, he + r * 2 * I + I, I);
        h_rows[r] = he + r * 2 * I;
      }
      gemm_packed(h_rows.data(), n, down.matrix(e), I, D, yp + start[e] * D, D);
    }
  });

  // out[m] = sum_k weights[m, k] * y[slot(m, k)], k in order.
  at::Tensor out = at::empty({M, D}, at::kFloat);  // [N*T, D]
  float* op = out.data_ptr<float>();
  const float* wp = weights.data_ptr<float>();
  at::parallel_for(0, M, /*grain_size=*/16, [&](int64_t m0, int64_t m1) {
    std::vector<const float*> ys(K);
    for (int64_t m = m0; m < m1; ++m) {
      for (int64_t k = 0; k < K; ++k) ys[k] = yp + slot_of_pair[m * K + k] * D;
      weighted_sum(op + m * D, ys.data(), wp + m * K, K, D);
    }
  });
  if (counts_out != nullptr) *counts_out = counts;
  return out;
}

}  // namespace r1kit::policy::cpu
