// MlaAttention (see mla.h). Weight names follow HF: q_proj | q_a_proj + q_a_layernorm +
// q_b_proj, kv_a_proj_with_mqa (rows [latent R ; k_rope Dr]), kv_a_layernorm,
// kv_b_proj (per head rows [k_nope Dn ; v Dv]), o_proj.
#include "policy/layers/mla.h"

#include <ATen/ATen.h>

#include <cmath>

#include "policy/cpu/decode_attention.h"
#include "policy/layers/rope.h"

namespace r1kit::policy {
namespace {

// x [N, H, T, Din] times a per-head weight w [H, Din, Dout] -> [N, H, T, Dout], as one bmm over the
// heads. at::matmul would broadcast w over the N rows and copy it N times (a copy of
// N*H*A*B floats that was a quarter of a decode step).
at::Tensor per_head_matmul(const at::Tensor& x, const at::Tensor& w) {
  const int64_t N = x.size(0), H = x.size(1), T = x.size(2);
  const at::Tensor xs = x.permute({1, 0, 2, 3}).reshape({H, N * T, x.size(3)});  // [H, N*T, Din]
  return at::bmm(xs, w).view({H, N, T, w.size(2)}).permute({1, 0, 2, 3});        // [N, H, T, Dout]
}

}  // namespace

MlaAttention::MlaAttention(const ModelConfig& c)
    : heads_(c.num_attention_heads),
      q_lora_rank_(c.q_lora_rank),
      kv_lora_rank_(c.kv_lora_rank),
      nope_dim_(c.qk_nope_head_dim),
      rope_dim_(c.qk_rope_head_dim),
      v_dim_(c.v_head_dim),
      interleave_(c.rope_interleave) {
  const int64_t D = c.hidden_size, qk_dim = nope_dim_ + rope_dim_;
  if (q_lora_rank_ > 0) {
    q_a_proj_ = add(*this, "q_a_proj", std::make_shared<Linear>(D, q_lora_rank_, c.qkv_bias));
    q_a_norm_ = add(*this, "q_a_layernorm", std::make_shared<RmsNorm>(q_lora_rank_, 1e-6));
    q_b_proj_ = add(*this, "q_b_proj", std::make_shared<Linear>(q_lora_rank_, heads_ * qk_dim, false));
  } else {
    q_proj_ = add(*this, "q_proj", std::make_shared<Linear>(D, heads_ * qk_dim, false));
  }
  kv_a_proj_ = add(*this, "kv_a_proj_with_mqa", std::make_shared<Linear>(D, kv_lora_rank_ + rope_dim_, c.qkv_bias));
  // HF builds these two norms with the default eps 1e-6, not rms_norm_eps.
  kv_a_norm_ = add(*this, "kv_a_layernorm", std::make_shared<RmsNorm>(kv_lora_rank_, 1e-6));
  kv_b_proj_ = add(*this, "kv_b_proj", std::make_shared<Linear>(kv_lora_rank_, heads_ * (nope_dim_ + v_dim_), false));
  o_proj_ = add(*this, "o_proj", std::make_shared<Linear>(heads_ * v_dim_, D, c.o_bias));
  scale_ = 1.0 / std::sqrt(static_cast<double>(qk_dim)) * yarn_softmax_scale(c.rope);
}

at::Tensor MlaAttention::forward(const at::Tensor& x, const AttentionContext& ctx, LayerKv* cache) const {
  const int64_t N = x.size(0), T = x.size(1);
  const at::Tensor q_flat =
      q_lora_rank_ > 0 ? q_b_proj_->forward(q_a_norm_->forward(q_a_proj_->forward(x))) : q_proj_->forward(x);
  const at::Tensor q = q_flat.view({N, T, heads_, nope_dim_ + rope_dim_}).transpose(1, 2);  // [N, H, T, Dn+Dr]
  const at::Tensor q_nope = q.narrow(-1, 0, nope_dim_);                                     // [N, H, T, Dn]
  const at::Tensor q_rope = apply_rope(q.narrow(-1, nope_dim_, rope_dim_), ctx.cos, ctx.sin, interleave_);

  const at::Tensor kv_a = kv_a_proj_->forward(x);                              // [N, T, R+Dr]
  at::Tensor latent = kv_a_norm_->forward(kv_a.narrow(-1, 0, kv_lora_rank_));  // [N, T, R]
  at::Tensor k_rope = apply_rope(kv_a.narrow(-1, kv_lora_rank_, rope_dim_).unsqueeze(1), ctx.cos, ctx.sin, interleave_)
                          .squeeze(1);  // [N, T, Dr]

  at::Tensor out;  // [N, H, T, Dv]
  if (cache != nullptr) {
    write_cache(cache->k, latent, ctx.cache_at, /*dim=*/1);
    write_cache(cache->v, k_rope, ctx.cache_at, /*dim=*/1);
  }
  if (cache == nullptr || !ctx.mask.defined()) {
    // Without a cache, or a prefill (CausalLM::forward_hidden: causal over these tokens only).
    // Expanded path: per-head keys [k_nope ; k_rope] and values, as HF computes them.
    const at::Tensor kv = kv_b_proj_->forward(latent).view({N, T, heads_, nope_dim_ + v_dim_}).transpose(1, 2);
    const at::Tensor k =
        at::cat({kv.narrow(-1, 0, nope_dim_), k_rope.unsqueeze(1).expand({N, heads_, T, rope_dim_})}, -1);
    const at::Tensor v = kv.narrow(-1, nope_dim_, v_dim_);
    out = attend(at::cat({q_nope, q_rope}, -1), k, v, ctx, scale_);
  } else {
    // kv_b_proj weight [H*(Dn+Dv), R] viewed per head: W_UK [H, Dn, R], W_UV [H, Dv, R]; with
    // a LoRA adapter on kv_b_proj, the adapted weight (the absorbed path uses the weight itself).
    const at::Tensor w_kvb = kv_b_proj_->effective_weight().view({heads_, nope_dim_ + v_dim_, kv_lora_rank_});
    const at::Tensor w_uk = w_kvb.narrow(1, 0, nope_dim_);
    const at::Tensor w_uv = w_kvb.narrow(1, nope_dim_, v_dim_);
    // Absorbed path: q_lat[n,h,t,:] = q_nope[n,h,t,:] W_UK[h]  -> [N, H, T, R]; then
    // scores = q_lat c^T + q_rope k_rope^T, and out = (softmax c) W_UV[h]^T.
    const at::Tensor q_lat = per_head_matmul(q_nope, w_uk);  // [N, H, T, R]
    if (cpu_decode_kernel_applies(q_lat, ctx) && cache->k.scalar_type() == at::kFloat) {
      // The kernel scores the latent and the RoPE key as one key without concatenating them,
      // and reads a paged cache through its block table in place.
      const at::Tensor c_kv = cache->k.unsqueeze(1);  // [N|NB, 1, Tk|Bs, R]
      const at::Tensor o_lat = cpu::decode_attention(q_lat.contiguous(), c_kv, c_kv, ctx.mask, scale_,
                                                     q_rope.contiguous(), cache->v.unsqueeze(1),
                                                     cache->blocks);  // [N, H, 1, R]
      out = per_head_matmul(o_lat, w_uv.transpose(1, 2));             // [N, H, 1, Dv]
      return o_proj_->forward(out.transpose(1, 2).reshape({N, T, heads_ * v_dim_}));
    }
    const bool paged = cache->blocks.defined();
    const at::Tensor c_kv =
        (paged ? gather_blocks(cache->k, cache->blocks, 1) : cache->k).to(q.scalar_type());  // [N, Tk, R]
    const at::Tensor c_rope =
        (paged ? gather_blocks(cache->v, cache->blocks, 1) : cache->v).to(q.scalar_type());  // [N, Tk, Dr]
    const at::Tensor q_cat = at::cat({q_lat, q_rope}, -1);                                   // [N, H, T, R+Dr]
    const at::Tensor k_cat = at::cat({c_kv, c_rope}, -1).unsqueeze(1);                       // [N, 1, Tk, R+Dr]
    // One key "head" shared by all H query heads: grouped attention, no per-head copies.
    const at::Tensor o_lat = attend_grouped(q_cat, k_cat, c_kv.unsqueeze(1), ctx, scale_);  // [N, H, T, R]
    out = per_head_matmul(o_lat, w_uv.transpose(1, 2));                                     // [N, H, T, Dv]
  }
  return o_proj_->forward(out.transpose(1, 2).reshape({N, T, heads_ * v_dim_}));
}

}  // namespace r1kit::policy
