// Fused RMSNorm (see rms_norm.h).
#include "policy/cpu/rms_norm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "policy/cpu/avx2_math.h"
#include "policy/cpu/dispatch.h"

namespace r1kit::policy::cpu {
namespace {

R1KIT_AVX2 void norm_row(const float* x, const float* w, int64_t D, float eps, float* y) {
  __m256 ss = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= D; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    ss = _mm256_fmadd_ps(v, v, ss);
  }
  float sum = hsum8(ss);
  for (; i < D; ++i) sum = std::fma(x[i], x[i], sum);
  const float r = 1.0f / std::sqrt(sum / static_cast<float>(D) + eps);
  const __m256 rv = _mm256_set1_ps(r);
  for (i = 0; i + 8 <= D; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), rv)));
  }
  for (; i < D; ++i) y[i] = w[i] * (x[i] * r);
}

}  // namespace

at::Tensor rms_norm(const at::Tensor& x_in, const at::Tensor& weight_in, double eps) {
  note_kernel_call();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = weight_in.contiguous();
  const int64_t D = x.size(-1), rows = x.numel() / D;
  TORCH_CHECK(w.numel() == D && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat, "rms_norm: x ",
              x.sizes(), " and weight ", w.sizes(), " must be fp32 with the same last dim");
  at::Tensor y = at::empty_like(x);  // [..., D]
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, rows, /*grain_size=*/64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) norm_row(xp + r * D, wp, D, static_cast<float>(eps), yp + r * D);
  });
  return y;
}

}  // namespace r1kit::policy::cpu
