// RmsNorm (see rms_norm.h).
#include "policy/layers/rms_norm.h"

#include <ATen/ATen.h>

#include "policy/cpu/dispatch.h"
#include "policy/cpu/rms_norm.h"

namespace r1kit::policy {

RmsNorm::RmsNorm(int64_t dim, double eps) : eps_(eps) { weight = register_parameter("weight", at::ones({dim})); }

at::Tensor RmsNorm::forward(const at::Tensor& x) const {
  if (cpu::kernels_apply(x) && weight.scalar_type() == at::kFloat) {
    return cpu::rms_norm(x, weight, eps_);  // decode: one pass (policy/cpu/rms_norm.h)
  }
  const auto dtype = x.scalar_type();
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(/*dim=*/-1, /*keepdim=*/true) + eps_);
  return weight * h.to(dtype);
}

}  // namespace r1kit::policy
