// RMSNorm over the last dim in one pass per row on the CPU (fp32, AVX2 + FMA), for decode:
// HF's h * rsqrt(mean(h^2) + eps) * weight as five ATen ops was ~5% of a decode step at
// the bench's 17 norms per token. Sum of squares in 8 lanes (a different order than
// ATen's mean, within float rounding); each row on its own, so batch-invariant.
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

// x [..., D] fp32 (inner dim contiguous after .contiguous()), weight [D] -> [..., D].
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace r1kit::policy::cpu
