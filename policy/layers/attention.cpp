// GQA attention and the shared attend() (see attention.h). SDPA dispatches to the fused
// CPU/CUDA kernels; its fp32 result matches HF's eager softmax(qk^T)v to ~1e-7.
#include "policy/layers/attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "policy/cpu/decode_attention.h"
#include "policy/cpu/dispatch.h"
#include "policy/layers/rope.h"

namespace r1kit::policy {

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionContext& ctx,
                  double scale) {
  if (!ctx.mask.defined()) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                            /*is_causal=*/true, scale);
  }
  return at::scaled_dot_product_attention(q, k, v, ctx.mask, /*dropout_p=*/0.0,
                                          /*is_causal=*/false, scale);
}

bool cpu_decode_kernel_applies(const at::Tensor& q, const AttentionContext& ctx) {
  return cpu::kernels_apply(q) && q.size(2) == 1 && ctx.mask.defined() && ctx.mask.scalar_type() == at::kFloat;
}

int64_t cached_length(const LayerKv& kv, int64_t seq_dim) {
  return kv.blocks.defined() ? kv.blocks.size(1) * kv.k.size(seq_dim) : kv.k.size(seq_dim);
}

at::Tensor gather_blocks(const at::Tensor& pool, const at::Tensor& blocks, int64_t seq_dim) {
  const int64_t N = blocks.size(0), nb = blocks.size(1);
  std::vector<int64_t> shape{N, nb};
  for (int64_t d = 1; d < pool.dim(); ++d) shape.push_back(pool.size(d));
  // [N*nb, .., Bs, ..] -> [N, nb, .., Bs, ..] -> [N, .., nb, Bs, ..] -> [N, .., nb*Bs, ..]
  return pool.index_select(0, blocks.reshape({-1}).to(pool.device()))
      .view(shape)
      .movedim(1, seq_dim)
      .flatten(seq_dim, seq_dim + 1);
}

at::Tensor attend_grouped(const at::Tensor& q, const at::Tensor& k_in, const at::Tensor& v_in,
                          const AttentionContext& ctx, double scale, const at::Tensor& blocks) {
  if (cpu_decode_kernel_applies(q, ctx) && k_in.scalar_type() == at::kFloat) {
    return cpu::decode_attention(q.contiguous(), k_in, v_in, ctx.mask, scale, {}, {}, blocks);
  }
  const at::Tensor k = (blocks.defined() ? gather_blocks(k_in, blocks, 2) : k_in).to(q.scalar_type());
  const at::Tensor v = (blocks.defined() ? gather_blocks(v_in, blocks, 2) : v_in).to(q.scalar_type());
  const int64_t N = q.size(0), H = q.size(1), T = q.size(2), Hk = k.size(1), g = H / Hk;
  TORCH_CHECK(H % Hk == 0 && ctx.mask.defined(), "attend_grouped: ", H, " query heads over ", Hk, " key heads");
  // Head h = hk * g + j reads key head hk (HF repeat_kv); its rows go to j * T + t. At decode
  // (T = 1) the [N, 1, 1, Tk] mask already broadcasts over the g stacked rows.
  const at::Tensor qg = q.reshape({N, Hk, g * T, q.size(3)});                           // [N, Hkv, g*T, Dh]
  const at::Tensor mask = g == 1 || T == 1 ? ctx.mask : ctx.mask.repeat({1, 1, g, 1});  // [N, 1, g*T|1, Tk]
  if (q.size(3) == v.size(3) && q.device().is_cpu()) {
    // SDPA's fused CPU kernel: one pass over the keys, no [N, Hkv, g*T, Tk] scores in memory.
    // Not on CUDA: with this additive fp32 mask over bf16 heads SDPA falls back to a slow
    // kernel there (H100: 2.4k vs 18.5k tok/s for the matmul path below, bench rollout).
    return at::scaled_dot_product_attention(qg, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false, scale)
        .reshape({N, H, T, v.size(3)});  // [N, H, T, Dv]
  }
  // MLA's latent (E = R + Dr keys, Ev = R values): SDPA would take its slow generic path.
  at::Tensor scores = at::matmul(qg, k.transpose(-1, -2)).mul_(scale).add_(mask);  // [N, Hkv, g*T, Tk]
  const at::Tensor p = at::softmax(scores, /*dim=*/-1, at::kFloat).to(v.scalar_type());
  return at::matmul(p, v).reshape({N, H, T, v.size(3)});  // [N, H, T, Dv]
}

CacheTargets cache_targets(const at::Tensor& positions, const at::Tensor& blocks, int64_t block_size) {
  const at::Tensor pos = positions.to(at::kLong);  // [N, T]
  if (!blocks.defined()) {
    return {at::arange(pos.size(0), pos.options()).unsqueeze(1).expand_as(pos).contiguous(), pos.contiguous()};
  }
  const at::Tensor p = pos.to(blocks.device());
  return {blocks.gather(1, p.div(block_size, "floor")).contiguous(), p.remainder(block_size).contiguous()};
}

void write_cache(at::Tensor& cache, const at::Tensor& fresh, const at::Tensor& positions, int64_t dim,
                 const at::Tensor& blocks) {
  write_cache(cache, fresh, cache_targets(positions, blocks, cache.size(dim)), dim);
}

void write_cache(at::Tensor& cache, const at::Tensor& fresh, const CacheTargets& to, int64_t dim) {
  // cache[r, .., s, ..] = fresh[n, .., t, ..] with (r, s) = to[n, t]: with `dim` moved next to
  // the first dimension this is one index_put_ on (r, s) pairs (~2.5x faster than a scatter
  // with an index expanded to fresh's shape).
  const int64_t N = to.rows.size(0);
  const at::Tensor dst = cache.movedim(dim, 1), src = fresh.movedim(dim, 1);  // [R, S, ...], [N, T, ...]
  if (dst.is_cpu() && src.is_cpu() && to.rows.is_cpu() && dst.scalar_type() == src.scalar_type() && dst.dim() <= 4 &&
      dst.stride(-1) == 1 && src.stride(-1) == 1 && dst.sizes().slice(2) == src.sizes().slice(2)) {
    // CPU: one memcpy per (row, token, head) instead of index_put_'s generic indexing.
    const at::Tensor& r = to.rows;  // [N, T], contiguous int64 (cache_targets)
    const at::Tensor& p = to.slots;
    const int64_t T = p.size(1), R = dst.size(0), S = dst.size(1), heads = dst.dim() == 4 ? dst.size(2) : 1;
    const int64_t el = static_cast<int64_t>(dst.element_size()), bytes = dst.size(-1) * el;
    const int64_t ds_h = dst.dim() == 4 ? dst.stride(2) : 0, ss_h = src.dim() == 4 ? src.stride(2) : 0;
    char* dp = static_cast<char*>(dst.data_ptr());
    const char* sp = static_cast<const char*>(src.data_ptr());
    const int64_t* rp = r.data_ptr<int64_t>();
    const int64_t* pp = p.data_ptr<int64_t>();
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t t = 0; t < T; ++t) {
        const int64_t row = rp[n * T + t], pos = pp[n * T + t];
        TORCH_CHECK(row >= 0 && row < R && pos >= 0 && pos < S, "write_cache: position ", pos, " of row ", row,
                    " outside the cache's ", R, " x ", S);
        for (int64_t h = 0; h < heads; ++h) {
          std::memcpy(dp + (row * dst.stride(0) + pos * dst.stride(1) + h * ds_h) * el,
                      sp + (n * src.stride(0) + t * src.stride(1) + h * ss_h) * el, static_cast<size_t>(bytes));
        }
      }
    }
    return;
  }
  cache.movedim(dim, 1).index_put_({to.rows.to(cache.device()), to.slots.to(cache.device())},
                                   src.to(cache.scalar_type()));
}

GqaAttention::GqaAttention(const ModelConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj_ = add(*this, "q_proj", std::make_shared<Linear>(c.hidden_size, heads_ * head_dim_, c.qkv_bias));
  k_proj_ = add(*this, "k_proj", std::make_shared<Linear>(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  v_proj_ = add(*this, "v_proj", std::make_shared<Linear>(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  o_proj_ = add(*this, "o_proj", std::make_shared<Linear>(heads_ * head_dim_, c.hidden_size, c.o_bias));
  if (c.qk_norm) {
    q_norm_ = add(*this, "q_norm", std::make_shared<RmsNorm>(head_dim_, c.rms_norm_eps));
    k_norm_ = add(*this, "k_norm", std::make_shared<RmsNorm>(head_dim_, c.rms_norm_eps));
  }
}

at::Tensor GqaAttention::forward(const at::Tensor& x, const AttentionContext& ctx, LayerKv* cache) const {
  const int64_t N = x.size(0), T = x.size(1);
  at::Tensor q = q_proj_->forward(x).view({N, T, heads_, head_dim_});     // [N, T, H, Dh]
  at::Tensor k = k_proj_->forward(x).view({N, T, kv_heads_, head_dim_});  // [N, T, Hkv, Dh]
  at::Tensor v = v_proj_->forward(x).view({N, T, kv_heads_, head_dim_});
  if (q_norm_) {  // qwen3: per-head RMSNorm before RoPE
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  q = apply_rope(q.transpose(1, 2), ctx.cos, ctx.sin, /*interleaved=*/false);  // [N, H, T, Dh]
  k = apply_rope(k.transpose(1, 2), ctx.cos, ctx.sin, /*interleaved=*/false);  // [N, Hkv, T, Dh]
  v = v.transpose(1, 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  if (cache != nullptr) {
    write_cache(cache->k, k, ctx.cache_at, /*dim=*/2);
    write_cache(cache->v, v, ctx.cache_at, /*dim=*/2);
  }
  if (cache != nullptr && ctx.mask.defined()) {
    const at::Tensor out = attend_grouped(q, cache->k, cache->v, ctx, scale, cache->blocks);
    return o_proj_->forward(out.transpose(1, 2).reshape({N, T, heads_ * head_dim_}));
  }
  if (kv_heads_ != heads_) {  // HF repeat_kv: query head h reads kv head h / (H / Hkv)
    k = k.repeat_interleave(heads_ / kv_heads_, /*dim=*/1);
    v = v.repeat_interleave(heads_ / kv_heads_, /*dim=*/1);
  }
  const at::Tensor out = attend(q, k, v, ctx, scale);  // [N, H, T, Dh]
  return o_proj_->forward(out.transpose(1, 2).reshape({N, T, heads_ * head_dim_}));
}

}  // namespace r1kit::policy
