// MasterWeights (see mixed_precision.h).
#include "pipelines/mixed_precision.h"

#include <ATen/ATen.h>

#include "policy/causal_lm.h"
#include "policy/lora.h"

namespace r1kit::pipelines {

void cast_parameters(policy::CausalLM& model, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> all = model.parameters();
  // LoRA adapters are parameters of their Linear's adapter, not of the module tree.
  if (policy::has_lora(model)) {
    for (const at::Tensor& t : policy::trainable_parameters(model)) all.push_back(t);
  }
  for (at::Tensor& p : all) {
    if (p.scalar_type() != dtype) p.set_data(p.to(dtype));
  }
}

MasterWeights::MasterWeights(policy::CausalLM& model, std::vector<at::Tensor> trained, at::ScalarType compute,
                             std::vector<at::Tensor> masters)
    : trained_(std::move(trained)), masters_(std::move(masters)) {
  TORCH_CHECK(masters_.size() == trained_.size(), "MasterWeights: ", masters_.size(), " masters for ", trained_.size(),
              " trained tensors");
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < trained_.size(); ++i) {
    TORCH_CHECK(masters_[i].scalar_type() == at::kFloat, "MasterWeights: masters must be fp32");
    masters_[i].copy_(trained_[i]);
  }
  cast_parameters(model, compute);
}

void MasterWeights::accumulate_gradients() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < trained_.size(); ++i) {
    at::Tensor& g = trained_[i].mutable_grad();
    if (!g.defined()) continue;
    at::Tensor& master_grad = masters_[i].mutable_grad();
    if (master_grad.defined()) {
      master_grad.add_(g.to(at::kFloat));
    } else {
      master_grad = g.to(at::kFloat);
    }
    g.reset();
  }
}

void MasterWeights::copy_to_model() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < trained_.size(); ++i) trained_[i].copy_(masters_[i]);
}

MasterWeights::ModelHoldsMasters::ModelHoldsMasters(MasterWeights& w) : w_(w) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < w_.trained_.size(); ++i) {
    compute_.push_back(w_.trained_[i].detach());
    w_.trained_[i].set_data(w_.masters_[i].detach());
  }
}

MasterWeights::ModelHoldsMasters::~ModelHoldsMasters() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < w_.trained_.size(); ++i) w_.trained_[i].set_data(compute_[i]);
}

}  // namespace r1kit::pipelines
