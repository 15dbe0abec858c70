// policy::Linear (see linear.h). Init: N(0, 0.02) weights and zero bias, HF's
// initializer_range default, used only for models r1kit creates from a config.
#include "policy/layers/linear.h"

#include <ATen/ATen.h>

#include "policy/cpu/packed_linear.h"

namespace r1kit::policy {

Linear::Linear(int64_t in, int64_t out, bool with_bias) {
  weight = register_parameter("weight", at::randn({out, in}) * 0.02);
  if (with_bias) bias = register_parameter("bias", at::zeros({out}));
}

at::Tensor Linear::forward(const at::Tensor& x) const {
  if (cpu::packed_linear_applies(x, weight)) return cpu::packed_linear(x, packed_.update(weight), bias);
  return at::linear(x, weight, bias);
}

}  // namespace r1kit::policy
