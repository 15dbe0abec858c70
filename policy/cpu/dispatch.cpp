// CPU kernel dispatch (see dispatch.h).
#include "policy/cpu/dispatch.h"

#include <ATen/ATen.h>

namespace r1kit::policy::cpu {

bool cpu_has_avx2_fma() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
}

bool kernels_apply(const at::Tensor& x) {
  return x.is_cpu() && x.scalar_type() == at::kFloat && !at::GradMode::is_enabled() && cpu_has_avx2_fma();
}

}  // namespace r1kit::policy::cpu
