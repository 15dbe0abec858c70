// Vector helpers for the AVX2 + FMA decode kernels in policy/cpu/. Every function carries
// the target attribute instead of the TU being built with -mavx2: the rest of the binary
// (and any inline template the compiler emits here) stays baseline x86-64, and callers
// ask kernels_apply (dispatch.h) before entering a kernel.
// exp8 follows Cephes' expf (range reduction by ln 2 in two parts, a degree-5 polynomial):
// within 2 ulp of std::exp over [-87, 88]; -inf gives exactly 0 (masked attention keys).
#pragma once
#include <immintrin.h>

#include <cmath>

#define R1KIT_AVX2 __attribute__((target("avx2,fma")))

namespace r1kit::policy::cpu {

R1KIT_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 is_finite_or_big = _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_GT_OQ);  // false for -inf
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365f)), _mm256_set1_ps(88.3762626647949f));
  // n = round(x / ln 2); r = x - n ln 2 with ln 2 split so that n * C1 is exact.
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(pow2n)), is_finite_or_big);
}

// Sum of the 8 lanes.
R1KIT_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace r1kit::policy::cpu
