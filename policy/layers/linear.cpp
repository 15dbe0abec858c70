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
  at::Tensor y = cpu::packed_linear_applies(x, weight) ? cpu::packed_linear(x, packed_.update(weight), bias)
                                                       : at::linear(x, weight, bias);  // [..., out]
  if (!lora || !lora->enabled) return y;
  // The adapter in its own dtype (fp32 beside a bf16 base), added in the output's.
  at::Tensor h = x.to(lora->A.scalar_type());  // [..., in]
  if (is_training() && lora->dropout > 0) h = at::dropout(h, lora->dropout, /*train=*/true);
  const at::Tensor delta = at::linear(at::linear(h, lora->A), lora->B) * lora->scale;  // [..., out]
  return y + delta.to(y.scalar_type());
}

at::Tensor Linear::effective_weight() const {
  if (!lora || !lora->enabled) return weight;
  return weight + (at::matmul(lora->B, lora->A) * lora->scale).to(weight.scalar_type());  // [out, in]
}

}  // namespace r1kit::policy
