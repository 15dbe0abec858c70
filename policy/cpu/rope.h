// Rotary embedding (HF rotate_half form) in one pass on the CPU (fp32, AVX2 + FMA), for
// decode, where x * cos + cat(-x2, x1) * sin cost five ATen ops per call:
// y[i] = x[i] cos[i] - x[i + h] sin[i], y[i + h] = x[i + h] cos[i + h] + x[i] sin[i + h].
// The interleaved form (DeepSeek's rope_interleave) stays on ATen.
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

// x [N, H, T, Dr] (any strides, inner dim contiguous), cos / sin [N, T, Dr] -> contiguous
// [N, H, T, Dr].
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace r1kit::policy::cpu
