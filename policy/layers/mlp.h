// SwiGLU MLP: down(silu(gate(x)) * up(x)), HF's LlamaMLP / Qwen2MLP / DeepseekV3MLP. Used for
// dense layers and for shared experts (whose width is a config choice of the MoE block).
#pragma once
#include <torch/nn/module.h>

#include "policy/layers/linear.h"

namespace r1kit::policy {

class Mlp : public torch::nn::Module {
 public:
  Mlp(int64_t dim, int64_t hidden, bool bias);
  at::Tensor forward(const at::Tensor& x) const;  // [..., D] -> [..., D]

 private:
  std::shared_ptr<Linear> gate_proj_, up_proj_, down_proj_;
};

}  // namespace r1kit::policy
