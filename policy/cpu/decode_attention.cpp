// Decode attention (see decode_attention.h).
#include "policy/cpu/decode_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "policy/cpu/avx2_math.h"
#include "policy/cpu/dispatch.h"

namespace r1kit::policy::cpu {
namespace {

R1KIT_AVX2 float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum8(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s = std::fma(a[i], b[i], s);
  return s;
}

// out[0..3] = a_j . b for the four vectors a_j = a + j * lda: one 4-way horizontal reduction
// instead of four (the reductions, not the FMAs, bound a dot product this short).
R1KIT_AVX2 void dot4(const float* a, int64_t lda, const float* b, int64_t n, float* out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 bv = _mm256_loadu_ps(b + i);
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), bv, s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + lda + i), bv, s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 2 * lda + i), bv, s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 3 * lda + i), bv, s3);
  }
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));  // per 128-bit half
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  alignas(16) float t[4];
  _mm_store_ps(t, r);
  for (int j = 0; j < 4; ++j) {
    for (int64_t e = i; e < n; ++e) t[j] = std::fma(a[j * lda + e], b[e], t[j]);
    out[j] = t[j];
  }
}

// p[s] = exp(x[s] - max) in place; returns the sum (exactly 0 weight for -inf).
R1KIT_AVX2 float exp_shifted(float* x, int64_t n, float max) {
  const __m256 mv = _mm256_set1_ps(max);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  float s = hsum8(sum);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    s += x[i];
  }
  return s;
}

// out[d] += sum_s p[s] * v[s * ld + d], 4 independent accumulators per 32 values.
R1KIT_AVX2 void add_weighted_values(const float* p, const float* v, int64_t ld, int64_t S, int64_t Ev, float* out) {
  int64_t d = 0;
  for (; d + 32 <= Ev; d += 32) {
    __m256 a0 = _mm256_loadu_ps(out + d), a1 = _mm256_loadu_ps(out + d + 8), a2 = _mm256_loadu_ps(out + d + 16),
           a3 = _mm256_loadu_ps(out + d + 24);
    for (int64_t s = 0; s < S; ++s) {
      if (p[s] == 0.0f) continue;
      const __m256 ps = _mm256_set1_ps(p[s]);
      const float* vs = v + s * ld + d;
      a0 = _mm256_fmadd_ps(ps, _mm256_loadu_ps(vs), a0);
      a1 = _mm256_fmadd_ps(ps, _mm256_loadu_ps(vs + 8), a1);
      a2 = _mm256_fmadd_ps(ps, _mm256_loadu_ps(vs + 16), a2);
      a3 = _mm256_fmadd_ps(ps, _mm256_loadu_ps(vs + 24), a3);
    }
    _mm256_storeu_ps(out + d, a0);
    _mm256_storeu_ps(out + d + 8, a1);
    _mm256_storeu_ps(out + d + 16, a2);
    _mm256_storeu_ps(out + d + 24, a3);
  }
  for (; d < Ev; ++d) {
    float a = out[d];
    for (int64_t s = 0; s < S; ++s) a = std::fma(p[s], v[s * ld + d], a);
    out[d] = a;
  }
}

// Where one (row, key head) reads and writes; strides in floats. Keys come in runs of Bs
// positions: one run (the row's own strip) for a contiguous cache, one per block when paged.
struct Pair {
  const float* q;        // first query head of the group; heads q_head apart
  const float* q2;       // second key part's query, or null
  const float* k;        // contiguous: this row's keys at this head; paged: the pool at this head
  const float* k2;       // likewise for the second key part
  const float* v;        // likewise for the values
  const int64_t* block;  // paged: the row's block ids; null when contiguous
  const float* mask;     // [S], mask_pos apart
  float* out;            // first head's output; heads Ev apart
};

struct Dims {
  int64_t g, S, E, E2, Ev;
  int64_t q_head, q2_head, k_pos, k2_pos, v_pos, mask_pos;
  int64_t Bs, k_block, k2_block, v_block;  // positions per run; a block's stride in the pools
  float scale;
};

// The key, second key and value pointers of run j (positions j*Bs ..) of a pair.
struct Run {
  const float* k;
  const float* k2;
  const float* v;
};
inline Run run_of(const Pair& p, const Dims& d, int64_t j) {
  const int64_t b = p.block != nullptr ? p.block[j] : 0;
  return {p.k + b * d.k_block, p.k2 != nullptr ? p.k2 + b * d.k2_block : nullptr, p.v + b * d.v_block};
}

// Prefetches the 64-byte lines of n floats at x into L2.
R1KIT_AVX2 inline void prefetch_row(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) _mm_prefetch(reinterpret_cast<const char*>(x + i), _MM_HINT_T1);
}

// `next` is the pair to be done after this one: its keys and values are prefetched while
// this one computes. The cache is larger than L3 at rollout sizes, so every step streams
// it from DRAM, and without the prefetch the kernel waited on memory most of the time.
R1KIT_AVX2 void attend_pair(const Pair& p, const Pair* next, const Dims& d, float* scores /* [g, S] */) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0, s0 = 0; s0 < d.S; ++j, s0 += d.Bs) {
    const Run r = run_of(p, d, j);
    const Run rn = next != nullptr ? run_of(*next, d, j) : Run{};
    const int64_t len = std::min(d.Bs, d.S - s0);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t s = s0 + i;
      if (next != nullptr) {
        prefetch_row(rn.k + i * d.k_pos, d.E);
        prefetch_row(rn.v + i * d.v_pos, d.Ev);
        if (rn.k2 != nullptr) prefetch_row(rn.k2 + i * d.k2_pos, d.E2);
      }
      const float m = p.mask[s * d.mask_pos];
      const float* ks = r.k + i * d.k_pos;
      if (m == neg_inf) {
        for (int64_t h = 0; h < d.g; ++h) scores[h * d.S + s] = neg_inf;
        continue;
      }
      int64_t h = 0;
      alignas(16) float dt[4], dt2[4];
      for (; h + 4 <= d.g; h += 4) {
        dot4(p.q + h * d.q_head, d.q_head, ks, d.E, dt);
        if (p.q2 != nullptr) dot4(p.q2 + h * d.q2_head, d.q2_head, r.k2 + i * d.k2_pos, d.E2, dt2);
        for (int t = 0; t < 4; ++t)
          scores[(h + t) * d.S + s] = (dt[t] + (p.q2 != nullptr ? dt2[t] : 0.0f)) * d.scale + m;
      }
      for (; h < d.g; ++h) {
        float x = dot(p.q + h * d.q_head, ks, d.E);
        if (p.q2 != nullptr) x += dot(p.q2 + h * d.q2_head, r.k2 + i * d.k2_pos, d.E2);
        scores[h * d.S + s] = x * d.scale + m;
      }
    }
  }
  for (int64_t h = 0; h < d.g; ++h) {
    float* row = scores + h * d.S;
    float mx = neg_inf;
    for (int64_t s = 0; s < d.S; ++s) mx = std::max(mx, row[s]);
    const float total = exp_shifted(row, d.S, mx);
    float* out = p.out + h * d.Ev;
    std::fill(out, out + d.Ev, 0.0f);
    for (int64_t j = 0, s0 = 0; s0 < d.S; ++j, s0 += d.Bs) {
      add_weighted_values(row + s0, run_of(p, d, j).v, d.v_pos, std::min(d.Bs, d.S - s0), d.Ev, out);
    }
    const float inv = 1.0f / total;
    for (int64_t e = 0; e < d.Ev; ++e) out[e] *= inv;
  }
}

}  // namespace

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                            double scale, const at::Tensor& q2, const at::Tensor& k2, const at::Tensor& blocks) {
  RECORD_FUNCTION("r1kit::decode_attention", std::vector<c10::IValue>());  // named in profiler traces
  note_kernel_call();
  const bool paged = blocks.defined();
  const int64_t N = q.size(0), H = q.size(1), E = q.size(3), Hk = k.size(1), Ev = v.size(3);
  const int64_t Bs = k.size(2), S = paged ? blocks.size(1) * Bs : Bs;  // positions per run, positions
  const bool two = q2.defined();
  const int64_t E2 = two ? q2.size(3) : 0;
  const int64_t rows = paged ? k.size(0) : N;  // of k, v, k2: pool blocks or rows
  TORCH_CHECK(q.size(2) == 1 && k.size(3) == E && (paged || k.size(0) == N) && v.size(0) == rows && v.size(1) == Hk &&
                  v.size(2) == Bs && H % Hk == 0,
              "decode_attention: q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(), " are not [N, H, 1, E], ",
              "[N, Hk, S, E], [N, Hk, S, Ev] (or pools of [Hk, Bs, *] blocks)");
  TORCH_CHECK(
      !paged || (blocks.dim() == 2 && blocks.size(0) == N && blocks.scalar_type() == at::kLong && blocks.is_cpu()),
      "decode_attention: blocks ", blocks.sizes(), " is not a CPU int64 [N=", N, ", nb] table");
  TORCH_CHECK(mask.dim() == 4 && mask.size(0) == N && mask.size(3) == S && mask.scalar_type() == at::kFloat,
              "decode_attention: mask ", mask.sizes(), " is not fp32 [N, 1, 1, S=", S, "]");
  TORCH_CHECK(!two || (k2.defined() && q2.size(1) == H && k2.size(0) == rows && k2.size(2) == Bs && k2.size(3) == E2),
              "decode_attention: second key part q2 / k2 do not match");
  for (const at::Tensor* t : {&q, &k, &v, &mask, &q2, &k2}) {
    TORCH_CHECK(!t->defined() || (t->scalar_type() == at::kFloat && t->stride(3) == 1),
                "decode_attention: fp32 tensors with contiguous inner dims expected");
  }
  const at::Tensor table = paged ? blocks.contiguous() : at::Tensor();  // [N, nb]
  const int64_t nb = paged ? table.size(1) : 1;
  const int64_t* tp = paged ? table.data_ptr<int64_t>() : nullptr;
  const int64_t g = H / Hk;
  at::Tensor out = at::empty({N, H, 1, Ev}, q.options());  // [N, H, 1, Dv]
  const Dims d{g,
               S,
               E,
               E2,
               Ev,
               q.stride(1),
               two ? q2.stride(1) : 0,
               k.stride(2),
               two ? k2.stride(2) : 0,
               v.stride(2),
               mask.stride(3),
               Bs,
               k.stride(0),
               two ? k2.stride(0) : 0,
               v.stride(0),
               static_cast<float>(scale)};
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* mp = mask.data_ptr<float>();
  const float* q2p = two ? q2.data_ptr<float>() : nullptr;
  const float* k2p = two ? k2.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  // Contiguous: a row's keys start at its row; paged: at its blocks (run_of adds them).
  const int64_t q_row = q.stride(0), k_row = paged ? 0 : k.stride(0), k_head = k.stride(1),
                v_row = paged ? 0 : v.stride(0), v_head = v.stride(1), mask_row = mask.stride(0);
  const int64_t q2_row = two ? q2.stride(0) : 0, k2_row = two && !paged ? k2.stride(0) : 0,
                k2_head = two ? k2.stride(1) : 0;
  at::parallel_for(0, N * Hk, /*grain_size=*/4, [&](int64_t i0, int64_t i1) {
    std::vector<float> scores(g * S);  // [g, Tk]
    auto pair = [&](int64_t i) {
      const int64_t n = i / Hk, hk = i % Hk;
      return Pair{qp + n * q_row + hk * g * d.q_head,
                  two ? q2p + n * q2_row + hk * g * d.q2_head : nullptr,
                  kp + n * k_row + hk * k_head,
                  two ? k2p + n * k2_row + hk * k2_head : nullptr,
                  vp + n * v_row + hk * v_head,
                  paged ? tp + n * nb : nullptr,
                  mp + n * mask_row,
                  op + (n * H + hk * g) * Ev};
    };
    Pair p = pair(i0);
    for (int64_t i = i0; i < i1; ++i) {
      const Pair next = i + 1 < i1 ? pair(i + 1) : Pair{};
      attend_pair(p, i + 1 < i1 ? &next : nullptr, d, scores.data());
      p = next;
    }
  });
  return out;
}

}  // namespace r1kit::policy::cpu
