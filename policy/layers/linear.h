// policy::Linear: y = x W^T (+ b), W [out, in] as in torch.nn.Linear, so that parameter
// names ("weight", "bias") and layouts are exactly Hugging Face's. A hand-rolled module
// rather than torch::nn::Linear keeps the options (bias or not) and the init in one place.
// At CPU decode the product runs on a packed copy of W (policy/cpu/packed_linear, the copy
// in policy/cpu/packed_weight).
#pragma once
#include <torch/nn/module.h>

#include "policy/cpu/packed_weight.h"

namespace r1kit::policy {

// A LoRA adapter on a Linear layer (policy/lora.h): kept outside the module's registered
// parameters, so that named_parameters() stays the Hugging Face checkpoint's list.
struct LoraAdapter {
  at::Tensor A;        // [r, in]
  at::Tensor B;        // [out, r]
  double scale = 1;    // alpha / r
  double dropout = 0;  // on the adapter's input, in training mode
  bool enabled = true;
};

class Linear : public torch::nn::Module {
 public:
  Linear(int64_t in, int64_t out, bool bias);
  // [..., in] -> [..., out]: x W^T + b, plus scale * dropout(x) A^T B^T with an enabled adapter.
  at::Tensor forward(const at::Tensor& x) const;
  // The weight this layer applies: W, or W + scale * B A with an enabled adapter (in W's
  // dtype), for code that uses the weight itself (MLA's absorbed decode).
  at::Tensor effective_weight() const;  // [out, in]
  // Frees the CPU decode copy of the weight (made again when needed).
  void drop_packed() const { packed_.clear(); }
  at::Tensor weight;                  // [out, in]
  at::Tensor bias;                    // [out] or undefined
  std::shared_ptr<LoraAdapter> lora;  // null: none

 private:
  mutable cpu::PackedWeight packed_;  // CPU decode copy of the weight (see packed_weight.h)
};

// Registers `module` under `name` in `parent` and returns it (keeps constructors short).
template <class M>
std::shared_ptr<M> add(torch::nn::Module& parent, const std::string& name, std::shared_ptr<M> module) {
  return parent.register_module(name, std::move(module));
}

}  // namespace r1kit::policy
