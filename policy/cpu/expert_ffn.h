// The routed experts of one MoE layer at inference on the CPU (fp32, no autograd), as one
// pass of plain loops around the packed GEMM: a counting sort of the N*T*K (token, expert)
// pairs by expert, per expert gate_up on its tokens' rows read in place, SiLU(gate) * up,
// down, then each token sums its K results weighted, in its own k order. No tensor op per
// expert and no gathered copy of the inputs; each token's result is independent of what
// else is in the batch. Same math as Experts::forward's ATen paths (HF Qwen3MoeExperts /
// DeepseekV3 experts); not used with gradients, where the ATen path keeps autograd.
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

class PackedWeight;

// x [N*T, D] fp32, experts [N*T, K] int64, weights [N*T, K] fp32 -> [N*T, D] = sum_k w_k * expert_{e_k}(x).
// gate_up packed from gate_up_proj [E, 2I, D] (gate rows first), down from down_proj
// [E, D, I], HF layout (packed_weight.h). counts (out) [E] int64 tokens per expert.
at::Tensor expert_ffn(const at::Tensor& x, const at::Tensor& experts, const at::Tensor& weights,
                      const PackedWeight& gate_up, const PackedWeight& down, at::Tensor* counts);

}  // namespace r1kit::policy::cpu
