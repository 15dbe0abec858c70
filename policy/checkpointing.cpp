// checkpointed() (see checkpointing.h): a custom autograd function whose backward runs the
// function again with gradients on and calls the autograd engine on that run (re-entrantly,
// as torch.utils.checkpoint's use_reentrant=True does).
#include "policy/checkpointing.h"

#include <ATen/ATen.h>
#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <mutex>

#include "policy/cpu/dispatch.h"

namespace r1kit::policy {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

thread_local bool t_in_recompute = false;

// What backward needs besides the saved input: the function and the generator state.
struct Call : torch::CustomClassHolder {
  CheckpointedFn fn;
  CheckpointedDone done;
  at::Tensor rng_state;
  c10::Device device = c10::Device(c10::kCPU);
};

at::Generator generator_of(const c10::Device& device) { return at::globalContext().defaultGenerator(device); }

at::Tensor generator_state(const c10::Device& device) {
  at::Generator g = generator_of(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_generator_state(const c10::Device& device, const at::Tensor& state) {
  at::Generator g = generator_of(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  // input [N, T, D]; anchor: an empty tensor that requires grad (see the header).
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& anchor,
                               const c10::intrusive_ptr<Call>& call) {
    (void)anchor;
    call->device = input.device();
    call->rng_state = generator_state(call->device);
    variable_list out;
    {
      at::NoGradGuard no_grad;
      cpu::AtenOnly aten;  // the recompute runs ATen (with gradients): so must this run
      out = call->fn(input);
    }
    if (call->done) call->done(false);
    ctx->save_for_backward({input});
    ctx->saved_data["call"] = c10::IValue::make_capsule(call);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor input = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    const auto call = c10::static_intrusive_pointer_cast<Call>(ctx->saved_data["call"].toCapsule());
    // The second run sees the generator as the first did; the caller's state is kept.
    const at::Tensor now = generator_state(call->device);
    set_generator_state(call->device, call->rng_state);
    variable_list out;
    {
      at::AutoGradMode grad_on(true);
      t_in_recompute = true;
      try {
        out = call->fn(input);
      } catch (...) {
        t_in_recompute = false;
        set_generator_state(call->device, now);
        throw;
      }
      t_in_recompute = false;
    }
    set_generator_state(call->device, now);
    variable_list roots, root_grads;
    for (size_t k = 0; k < out.size(); ++k) {
      if (grads[k].defined() && out[k].requires_grad()) {
        roots.push_back(out[k]);
        root_grads.push_back(grads[k]);
      }
    }
    if (!roots.empty()) torch::autograd::backward(roots, root_grads);
    out.clear(), roots.clear();  // the recompute's graph goes before `done` frees what it used
    if (call->done) call->done(true);
    return {input.grad(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::vector<at::Tensor> checkpointed(const CheckpointedFn& fn, const at::Tensor& input, const CheckpointedDone& done) {
  auto call = c10::make_intrusive<Call>();
  call->fn = fn;
  call->done = done;
  const at::Tensor anchor = at::empty({0}, input.options()).requires_grad_(true);
  return Checkpoint::apply(input, anchor, call);
}

bool in_recompute() { return t_in_recompute; }

}  // namespace r1kit::policy
