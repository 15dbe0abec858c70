// DeepSeek-V3's released FP8 weight format (deepseek_facts.md 4.7): a Linear weight [out, in]
// stored as float8 e4m3 with one fp32 `weight_scale_inv` per 128 x 128 block
// ([ceil(out/128), ceil(in/128)]); the value is q * scale_inv. The scale rule is the release's
// kernel's: scale_inv = amax / 448 (e4m3's largest finite value) over the block, edge blocks
// zero-padded; an all-zero block gets scale_inv 1. Quantised: every Linear weight (attention
// projections, dense MLPs, experts, shared experts); kept in bf16: embeddings, lm_head, norms,
// the router's gate.weight and bias, as in the release.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace r1kit::policy {

inline constexpr int64_t kFp8Block = 128;
inline constexpr double kFp8E4m3Max = 448.0;

struct Fp8Weight {
  at::Tensor weight;     // [out, in] float8_e4m3fn
  at::Tensor scale_inv;  // [ceil(out/128), ceil(in/128)] fp32
};

// w [out, in] (any float dtype) -> its FP8 blocks and scales.
Fp8Weight quantize_fp8(const at::Tensor& w);
// q [out, in] float8 with scale_inv -> [out, in] fp32 (each block times its scale).
at::Tensor dequantize_fp8(const at::Tensor& q, const at::Tensor& scale_inv);
// Whether the release stores the tensor `name` (HF name, on disk) of this shape in FP8.
bool fp8_quantized(const std::string& name, const at::Tensor& t);

}  // namespace r1kit::policy
