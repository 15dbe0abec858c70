// Rotary position embedding, HF's tables and both layouts.
//
// make_rope_table follows transformers' ROPE_INIT_FUNCTIONS (default, linear, llama3, yarn)
// in fp32, so inv_freq matches bit for bit. apply_rope rotates either half-split pairs
// (x_i, x_{i+d/2}) (Llama/Qwen, HF rotate_half) or interleaved pairs (x_{2i}, x_{2i+1})
// (DeepSeek, HF rope_interleave); the interleaved form returns the rotated evens then the
// rotated odds, exactly like HF's apply_rotary_pos_emb_interleave. Attention scores are
// invariant to that permutation because q and k get the same one.
#pragma once
#include <ATen/core/Tensor.h>

#include "policy/config.h"

namespace r1kit::policy {

struct RopeTable {
  at::Tensor inv_freq;           // [Dr/2] fp32
  double attention_scaling = 1;  // multiplies cos and sin (YaRN's attention factor)
};

RopeTable make_rope_table(const ModelConfig& c);
// cos, sin for the given positions: each [N, T, Dr] in `dtype`.
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const RopeTable& table, const at::Tensor& positions,
                                               at::ScalarType dtype);
// x [N, H, T, Dr]; cos/sin [N, T, Dr].
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved);
// YaRN's extra softmax scale for DeepSeek (mscale_all_dim): 1 when not YaRN.
double yarn_softmax_scale(const RopeConfig& r);

}  // namespace r1kit::policy
