// Aux-loss-free load balancing (DeepSeek-V3 sec. 2.1.2): after each optimizer step, every
// MoE layer's router bias moves by gamma toward balance,
//     b_i += gamma * sign(mean_j load_j - load_i),
// where load is the number of tokens routed to expert i during the step (accumulated by the
// MoE blocks in train mode). The bias only selects experts; it never weights them (moe.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace r1kit::policy {

class CausalLM;

struct ExpertLoadReport {
  std::vector<int64_t> layers;        // the decoder-layer index of each MoE layer
  std::vector<double> max_over_mean;  // per MoE layer: max load / mean load (1 = balanced)
};

// `reduce` (optional) sums a layer's [E] load across data-parallel ranks before the update,
// so every rank applies the same change. Resets the accumulated loads.
ExpertLoadReport update_router_biases(CausalLM& model, double gamma,
                                      const std::function<void(at::Tensor&)>& reduce = {});
// The rule itself on one layer (exposed for tests): returns the new bias.
at::Tensor biased_update(const at::Tensor& bias, const at::Tensor& load, double gamma);

}  // namespace r1kit::policy
