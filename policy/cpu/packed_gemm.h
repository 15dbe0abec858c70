// C = A B for a few rows of A against a weight matrix B packed once: the GEMM under the
// routed experts at decode, where each expert sees ~M = N*K/E rows (tens) and a general
// BLAS call spends as long packing B and dispatching as multiplying. B is packed into
// panels of kPanel columns, each K x kPanel contiguous, so the 6 x 16 register-blocked
// micro-kernel streams it linearly. Rows of A are given by pointers (an expert's tokens
// are gathered without a copy). Each output element is a plain FMA chain over k = 0..K-1,
// so a row's result never depends on which or how many other rows share the call (batch
// invariance, which BLAS kernels chosen by M do not promise).
// AVX2 + FMA only (fp32); callers ask kernels_apply (dispatch.h) and otherwise use ATen.
#pragma once
#include <cstdint>

namespace r1kit::policy::cpu {

constexpr int64_t kPanel = 16;

// Floats needed to pack a K x N matrix (N rounded up to whole panels).
int64_t packed_size(int64_t k, int64_t n);
// dst <- B packed, where B[k][j] = src[k * stride_k + j * stride_j] (any layout: the experts
// store B transposed, [N, K]); columns past N are zero.
void pack_b(const float* src, int64_t k, int64_t n, int64_t stride_k, int64_t stride_j, float* dst);
// c[r * ldc + j] = sum_k a_rows[r][k] * B[k][j] for r < m, j < n; B as packed by pack_b.
void gemm_packed(const float* const* a_rows, int64_t m, const float* packed, int64_t k, int64_t n, float* c,
                 int64_t ldc);

}  // namespace r1kit::policy::cpu
