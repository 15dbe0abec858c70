// update_router_biases (see balancing.h).
#include "policy/balancing.h"

#include <ATen/ATen.h>

#include "policy/causal_lm.h"
#include "policy/layers/moe.h"

namespace r1kit::policy {

at::Tensor biased_update(const at::Tensor& bias, const at::Tensor& load, double gamma) {
  const at::Tensor l = load.to(at::kFloat).to(bias.device());
  return bias + gamma * at::sign(l.mean() - l);
}

ExpertLoadReport update_router_biases(CausalLM& model, double gamma, const std::function<void(at::Tensor&)>& reduce) {
  ExpertLoadReport report;
  at::NoGradGuard no_grad;
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) {
    if (model.config().is_moe_layer(l)) report.layers.push_back(l);
  }
  for (MoeBlock* block : model.moe_blocks()) {
    at::Tensor load = block->take_load();  // [E] on the router's device
    if (reduce) reduce(load);
    const double mean = load.mean().item<double>();
    report.max_over_mean.push_back(mean > 0 ? load.max().item<double>() / mean : 1.0);
    at::Tensor& bias = block->router().bias;
    if (bias.defined() && mean > 0) bias.copy_(biased_update(bias, load, gamma));
  }
  return report;
}

}  // namespace r1kit::policy
