// When the CPU kernels in policy/cpu (and rollout/cpu_draw) run instead of ATen: fp32 tensors
// on a CPU with AVX2 + FMA, autograd off (inference: rollout, reference and old logprobs,
// eval). This is the one place that decides it: every caller asks kernels_apply and adds
// only its own shape conditions; everything else (training, CUDA, bf16, other CPUs) stays ATen.
// Switch: R1KIT_CPU_KERNELS=0 in the environment turns every kernel off (each caller takes
// its plain ATen path, for telling a kernel bug from a model bug); unset or 1 leaves them on,
// any other value is an error. Read once, at the first question.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace r1kit::policy::cpu {

// True when this CPU runs AVX2 and FMA (checked once).
bool cpu_has_avx2_fma();
// cpu_has_avx2_fma() and the kernels are not switched off (R1KIT_CPU_KERNELS=0, or
// set_kernels_enabled(false)).
bool kernels_enabled();
// Overrides R1KIT_CPU_KERNELS for the rest of the process (tests, benchmarks); returns the
// previous setting. On a CPU without AVX2 + FMA the kernels stay off either way.
bool set_kernels_enabled(bool on);
// x is fp32 on the CPU, autograd is off, kernels_enabled() and no AtenOnly is in scope on
// this thread.
bool kernels_apply(const at::Tensor& x);
// Within its scope this thread takes the ATen paths even without autograd: activation
// checkpointing's first forward runs without gradients, but must compute exactly what its
// recompute (with gradients, ATen) computes.
class AtenOnly {
 public:
  AtenOnly();
  ~AtenOnly();
  AtenOnly(const AtenOnly&) = delete;
  AtenOnly& operator=(const AtenOnly&) = delete;

 private:
  bool previous_;
};
// Kernel entries (packed_linear, expert_ffn, decode_attention, rms_norm, rope, cpu_draw)
// in this process: each kernel counts itself, so a caller that ran one without asking
// kernels_apply shows up with the switch off (tests).
int64_t kernel_calls();
void note_kernel_call();

}  // namespace r1kit::policy::cpu
