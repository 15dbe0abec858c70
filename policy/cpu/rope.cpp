// Fused rotate_half RoPE (see rope.h).
#include "policy/cpu/rope.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "policy/cpu/avx2_math.h"
#include "policy/cpu/dispatch.h"

namespace r1kit::policy::cpu {
namespace {

R1KIT_AVX2 void rope_row(const float* x, const float* c, const float* s, int64_t half, float* y) {
  int64_t i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 x1 = _mm256_loadu_ps(x + i), x2 = _mm256_loadu_ps(x + half + i);
    _mm256_storeu_ps(
        y + i, _mm256_sub_ps(_mm256_mul_ps(x1, _mm256_loadu_ps(c + i)), _mm256_mul_ps(x2, _mm256_loadu_ps(s + i))));
    _mm256_storeu_ps(y + half + i, _mm256_add_ps(_mm256_mul_ps(x2, _mm256_loadu_ps(c + half + i)),
                                                 _mm256_mul_ps(x1, _mm256_loadu_ps(s + half + i))));
  }
  for (; i < half; ++i) {
    y[i] = x[i] * c[i] - x[half + i] * s[i];
    y[half + i] = x[half + i] * c[half + i] + x[i] * s[half + i];
  }
}

}  // namespace

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos_in, const at::Tensor& sin_in) {
  note_kernel_call();
  const int64_t N = x.size(0), H = x.size(1), T = x.size(2), Dr = x.size(3);
  const at::Tensor cos = cos_in.contiguous(), sin = sin_in.contiguous();  // [N, T, Dr]
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.stride(3) == 1 && Dr % 2 == 0 && cos.sizes() == sin.sizes() &&
                  cos.size(0) == N && cos.size(1) == T && cos.size(2) == Dr && cos.scalar_type() == at::kFloat,
              "rope: x ", x.sizes(), " and cos ", cos.sizes(), " are not fp32 [N, H, T, Dr] and [N, T, Dr]");
  at::Tensor y = at::empty({N, H, T, Dr}, x.options());  // [N, H, T, Dr]
  const float* xp = x.data_ptr<float>();
  const float* cp = cos.data_ptr<float>();
  const float* sp = sin.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t sn = x.stride(0), sh = x.stride(1), st = x.stride(2);
  at::parallel_for(0, N * H * T, /*grain_size=*/64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / (H * T), h = (i / T) % H, t = i % T;
      const int64_t table = (n * T + t) * Dr;
      rope_row(xp + n * sn + h * sh + t * st, cp + table, sp + table, Dr / 2, yp + i * Dr);
    }
  });
  return y;
}

}  // namespace r1kit::policy::cpu
