// When the CPU kernels in policy/cpu run instead of ATen: fp32 tensors on a CPU with AVX2 +
// FMA, autograd off (inference: rollout, reference and old logprobs, eval). Each layer adds
// its own shape conditions; everything else (training, CUDA, bf16, other CPUs) stays ATen.
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

// True when this CPU runs AVX2 and FMA (checked once).
bool cpu_has_avx2_fma();
// x is fp32 on the CPU, autograd is off and the CPU has AVX2 + FMA.
bool kernels_apply(const at::Tensor& x);

}  // namespace r1kit::policy::cpu
