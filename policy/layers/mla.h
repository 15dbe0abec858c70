// Multi-head latent attention (DeepSeek-V2/V3 sec. 2.1.1; HF DeepseekV3Attention).
//
// Keys and values come from a compressed latent c = norm(W_DKV x) [R] plus one RoPE key
// k_r [Dr] shared by all heads; that (R + Dr) per token per layer is all the cache holds.
// Two equal paths:
//  - expanded (training, prefill without cache): k_nope, v = W_UK c, W_UV c per head, then
//    ordinary attention over heads of width Dn + Dr, exactly HF's computation;
//  - absorbed (with a cache): W_UK is folded into the query (q_lat = q_nope W_UK, [R] per
//    head) and W_UV into the output, so attention runs directly on the cached latent and the
//    per-head keys are never materialised (DeepSeek-V2 appendix, "absorb").
#pragma once
#include <torch/nn/module.h>

#include "policy/layers/attention.h"

namespace r1kit::policy {

class MlaAttention : public torch::nn::Module {
 public:
  explicit MlaAttention(const ModelConfig& c);
  // x [N, T, D] -> [N, T, D]; cache: k = latent [N, Tk, R], v = k_rope [N, Tk, Dr].
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKv* cache) const;

 private:
  int64_t heads_, q_lora_rank_, kv_lora_rank_, nope_dim_, rope_dim_, v_dim_;
  bool interleave_;
  double scale_;
  std::shared_ptr<Linear> q_proj_, q_a_proj_, q_b_proj_, kv_a_proj_, kv_b_proj_, o_proj_;
  std::shared_ptr<RmsNorm> q_a_norm_, kv_a_norm_;
};

}  // namespace r1kit::policy
