// Mlp (see mlp.h).
#include "policy/layers/mlp.h"

#include <ATen/ATen.h>

namespace r1kit::policy {

Mlp::Mlp(int64_t dim, int64_t hidden, bool bias) {
  gate_proj_ = add(*this, "gate_proj", std::make_shared<Linear>(dim, hidden, bias));
  up_proj_ = add(*this, "up_proj", std::make_shared<Linear>(dim, hidden, bias));
  down_proj_ = add(*this, "down_proj", std::make_shared<Linear>(hidden, dim, bias));
}

at::Tensor Mlp::forward(const at::Tensor& x) const {
  return down_proj_->forward(at::silu(gate_proj_->forward(x)) * up_proj_->forward(x));
}

}  // namespace r1kit::policy
