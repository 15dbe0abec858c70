// Fused CPU draw (see cpu_draw.h).
#include "rollout/cpu_draw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "policy/cpu/avx2_math.h"
#include "policy/cpu/dispatch.h"

namespace r1kit::rollout {
namespace {

// One row: returns the token and writes its logprob. `mass` is a V-float scratch row.
R1KIT_AVX2 int64_t draw_row(const float* x, int64_t V, float temperature, double u, float* mass, float* logprob) {
  using policy::cpu::exp8;
  const bool tempered = temperature != 1.0f;
  const __m256 tv = _mm256_set1_ps(temperature);
  // Pass 1: the max of x / T (T > 0 keeps the argmax, so the max of x suffices).
  float top = -std::numeric_limits<float>::infinity();
  {
    __m256 m = _mm256_set1_ps(top);
    int64_t i = 0;
    for (; i + 8 <= V; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    alignas(32) float t[8];
    _mm256_store_ps(t, m);
    for (float v : t) top = std::max(top, v);
    for (; i < V; ++i) top = std::max(top, x[i]);
  }
  const float top_t = tempered ? top / temperature : top;
  // Pass 2: mass = exp(x / T - top / T), total in double.
  const __m256 topv = _mm256_set1_ps(top_t);
  __m256d total_lo = _mm256_setzero_pd(), total_hi = total_lo;
  int64_t i = 0;
  for (; i + 8 <= V; i += 8) {
    __m256 xv = _mm256_loadu_ps(x + i);
    if (tempered) xv = _mm256_div_ps(xv, tv);
    const __m256 e = exp8(_mm256_sub_ps(xv, topv));
    _mm256_storeu_ps(mass + i, e);
    total_lo = _mm256_add_pd(total_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    total_hi = _mm256_add_pd(total_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double t4[4];
  _mm256_store_pd(t4, _mm256_add_pd(total_lo, total_hi));
  double total = (t4[0] + t4[1]) + (t4[2] + t4[3]);
  for (; i < V; ++i) {
    mass[i] = std::exp((tempered ? x[i] / temperature : x[i]) - top_t);
    total += mass[i];
  }
  // Pass 3: walk the CDF to u * total.
  const double target = u * total;
  double acc = 0;
  int64_t tok = 0;
  while (tok < V && (acc += mass[tok]) <= target) ++tok;
  if (tok == V) {  // rounding left the target at or past the last mass: the mode
    tok = 0;
    for (int64_t j = 1; j < V; ++j) tok = mass[j] > mass[tok] ? j : tok;
  }
  const float x_tok = tempered ? x[tok] / temperature : x[tok];
  *logprob = x_tok - top_t - static_cast<float>(std::log(total));
  return tok;
}

}  // namespace

void cpu_draw(const float* logits, int64_t N, int64_t V, double temperature, const double* uniforms, int64_t* tokens,
              float* logprobs) {
  policy::cpu::note_kernel_call();
  at::parallel_for(0, N, /*grain_size=*/8, [&](int64_t n0, int64_t n1) {
    std::vector<float> mass(V);  // [V] scratch
    for (int64_t n = n0; n < n1; ++n) {
      tokens[n] = draw_row(logits + n * V, V, static_cast<float>(temperature), uniforms[n], mass.data(), logprobs + n);
    }
  });
}

}  // namespace r1kit::rollout
