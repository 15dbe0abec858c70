// Grouped-query attention (HF LlamaAttention / Qwen2Attention / Qwen3MoeAttention) and the
// per-forward context every attention layer shares.
//
// Masking rule, one for training and generation: a query at absolute position p sees the
// keys at cache indices 0..p. Training passes no cache, rows are right-padded, and plain
// causal attention is exactly that rule, so a pad token never influences a real token and a
// row's result never depends on what else is in the batch. With a cache (rollout), each
// row's keys live at their own positions, new keys are written at `positions`, and the mask
// [N, 1, T, Tk] is built once per forward by CausalLM, additive (0 = visible, -inf = hidden)
// in the activations' dtype, so no layer converts or repeats it.
#pragma once
#include <torch/nn/module.h>

#include "policy/config.h"
#include "policy/layers/linear.h"
#include "policy/layers/rms_norm.h"

namespace r1kit::policy {

// One layer's cache, allocated and owned by rollout (KvCache: contiguous, KvPool: paged).
// Contiguous (blocks undefined): GQA k, v [N, Hkv, Tk, Dh]; MLA k = compressed latent after
// its norm [N, Tk, R], v = RoPE'd shared key [N, Tk, Dr].
// Paged (blocks defined, [N, nb] int64): k and v are the whole pool of fixed-size blocks,
// GQA [NB, Hkv, Bs, Dh], MLA [NB, Bs, R] and [NB, Bs, Dr]; row n's position p lives in block
// blocks[n][p / Bs] at offset p % Bs, and the row sees Tk = nb * Bs positions (those past its
// own are masked, so unused table entries may name any block).
struct LayerKv {
  at::Tensor k;
  at::Tensor v;
  at::Tensor blocks;
};

// Tk of a layer's cache: its positions (contiguous) or nb * Bs (paged). seq_dim: the cache
// tensor's position dimension, 2 for GQA and 1 for MLA.
int64_t cached_length(const LayerKv& kv, int64_t seq_dim);
// A paged cache tensor's rows gathered into the contiguous layout: pool [NB, .., Bs, ..] with
// positions at seq_dim, blocks [N, nb] -> [N, .., nb * Bs, ..]. The ATen paths (prefill with a
// cache, bf16, CUDA) read this copy; the CPU decode kernel reads the blocks in place.
at::Tensor gather_blocks(const at::Tensor& pool, const at::Tensor& blocks, int64_t seq_dim);

// Where each query token's key and value go in a cache: row n at its position, or, paged with
// blocks of Bs positions, block blocks[n][p / Bs] at offset p % Bs. [N, T] int64 each.
struct CacheTargets {
  at::Tensor rows;
  at::Tensor slots;
};
CacheTargets cache_targets(const at::Tensor& positions, const at::Tensor& blocks, int64_t block_size);

struct AttentionContext {
  at::Tensor positions;   // [N, T] int64 absolute positions of the query tokens
  at::Tensor cos, sin;    // [N, T, Dr] RoPE tables at those positions
  at::Tensor mask;        // [N, 1, T, Tk] additive: 0 = attend, -inf = hidden; undefined = causal over T
  CacheTargets cache_at;  // with a cache: where the tokens' keys go, the same in every layer
};

// softmax(q k^T * scale) v with the context's mask; q [N, H, T, Dh], k [N, H, Tk, Dh],
// v [N, H, Tk, Dv] -> [N, H, T, Dv].
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionContext& ctx,
                  double scale);
// The cached path: q [N, H, T, Dh] against keys k [N, Hkv, Tk, Dh] and values v [N, Hkv, Tk, Dv]
// shared by groups of H / Hk query heads (GQA; MLA's latent has Hk = 1), masked by
// ctx.mask. The g = H / Hk query heads of a group are stacked as g*T queries of one
// attention against their shared keys (SDPA's fused CPU kernel when the key and value sizes
// agree), so cached keys are never repeated per head (a per-step copy that dominated decode).
// With `blocks` ([N, nb], see LayerKv) k and v are pools [NB, Hkv, Bs, D*] read through it.
at::Tensor attend_grouped(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionContext& ctx,
                          double scale, const at::Tensor& blocks = {});
// True where the decode kernel (policy/cpu/decode_attention) replaces attend_grouped's
// ATen path: one query token per row (T = 1), cpu::kernels_apply, a mask given.
bool cpu_decode_kernel_applies(const at::Tensor& q, const AttentionContext& ctx);
// Writes new [N, *, T, *]-shaped keys into a cache along `dim` at `at` (cache_targets).
void write_cache(at::Tensor& cache, const at::Tensor& fresh, const CacheTargets& at, int64_t dim);
// The same at `positions`; with `blocks` ([N, nb]) the cache is a pool and each position goes
// to its row's block.
void write_cache(at::Tensor& cache, const at::Tensor& fresh, const at::Tensor& positions, int64_t dim,
                 const at::Tensor& blocks = {});

class GqaAttention : public torch::nn::Module {
 public:
  explicit GqaAttention(const ModelConfig& c);
  // x [N, T, D] -> [N, T, D]
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKv* cache) const;

 private:
  int64_t heads_, kv_heads_, head_dim_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, o_proj_;
  std::shared_ptr<RmsNorm> q_norm_, k_norm_;  // qwen3 only
};

}  // namespace r1kit::policy
