// Attention of one new token per row against its cache, on the CPU (fp32, AVX2 + FMA):
// the decode step's attention without SDPA's blocked kernel, which is built for long query
// blocks and at one query per head spends most of its time in set-up (measured: 1.4 ms per
// call on the bench model, ~5x this kernel). For each (row, key head) the g = H / Hk query
// heads of its group score every cached key once, softmax in fp32, and sum the values.
// Keys may come in two parts that are scored as one (MLA: the latent and the RoPE key, so
// the cache is never concatenated). Masked keys (-inf) are skipped and weigh exactly 0.
// Batch-invariant: a row's result depends on its own keys only.
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

// q [N, H, 1, Dh], k [N, Hkv, Tk, Dh], v [N, Hkv, Tk, Dv], mask [N, 1, 1, Tk] additive (0 / -inf);
// optional q2 [N, H, 1, Dr], k2 [N, Hkv, Tk, Dr]: score = (q.k + q2.k2) * scale + mask.
// Paged (blocks [N, nb] int64 given, policy/layers/attention.h LayerKv): k, v, k2 are pools
// [NB, Hkv, Bs, *] and row n's position s is read from block blocks[n][s / Bs], Tk = nb * Bs.
// Inner dims must be contiguous (stride 1); other strides are free (cache views).
// Returns [N, H, 1, Dv] fp32.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                            double scale, const at::Tensor& q2 = {}, const at::Tensor& k2 = {},
                            const at::Tensor& blocks = {});

}  // namespace r1kit::policy::cpu
