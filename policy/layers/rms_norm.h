// RMSNorm as in HF (LlamaRMSNorm / DeepseekV3RMSNorm): normalise in fp32, cast back to the
// input dtype, THEN multiply by the weight. The order matters for bf16 parity.
#pragma once
#include <torch/nn/module.h>

namespace r1kit::policy {

class RmsNorm : public torch::nn::Module {
 public:
  RmsNorm(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;  // [..., dim] -> [..., dim]
  at::Tensor weight;                              // [dim]

 private:
  double eps_;
};

}  // namespace r1kit::policy
