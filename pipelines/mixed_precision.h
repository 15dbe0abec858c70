// Mixed-precision training: the model computes in bf16 while AdamW updates fp32 master
// copies of the trained tensors. Why: at a real learning rate (1e-6) most AdamW updates are
// smaller than half a bf16 ulp of the weight (8 bits of mantissa: ~0.4% of |w|), so a pure
// bf16 weight does not move; the fp32 master keeps every update and the bf16 copy is its
// rounding. One fp32 master + one bf16 compute copy + fp32 gradients and AdamW moments is
// 4 + 2 + 4 + 8 = 18 bytes per trained parameter (the compute copy's bf16 gradient is
// transient: folded into the master's after each backward).
// The compute copy IS the model's parameter tensor, so the rollout engine samples from it
// with no third copy. Frozen tensors (a LoRA base) are cast to bf16 and have no master.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace r1kit::policy {
class CausalLM;
}

namespace r1kit::pipelines {

class MasterWeights {
 public:
  // `masters` (fp32, one per tensor of `trained`, e.g. the ones an optimizer was built over)
  // take the values of `trained` (the model's trained tensors, fp32 now); then every
  // parameter of `model` is cast to `compute` (router-bias buffers stay fp32).
  MasterWeights(policy::CausalLM& model, std::vector<at::Tensor> trained, at::ScalarType compute,
                std::vector<at::Tensor> masters);

  // What AdamW updates: one fp32 tensor per trained tensor, in the same order.
  const std::vector<at::Tensor>& masters() const { return masters_; }
  // After a backward: each compute tensor's gradient is added into its master's fp32
  // gradient and released, so micro-batches accumulate in fp32.
  void accumulate_gradients();
  // After an optimizer step: compute copy = round(master).
  void copy_to_model();

  // Within its scope the model's trained tensors hold the fp32 masters (a checkpoint, the
  // final model and the replica check see full precision), then their compute copies again.
  class ModelHoldsMasters {
   public:
    explicit ModelHoldsMasters(MasterWeights& w);
    ~ModelHoldsMasters();
    ModelHoldsMasters(const ModelHoldsMasters&) = delete;
    ModelHoldsMasters& operator=(const ModelHoldsMasters&) = delete;

   private:
    MasterWeights& w_;
    std::vector<at::Tensor> compute_;  // the bf16 data set aside
  };

 private:
  std::vector<at::Tensor> trained_;  // the model's parameter tensors (compute dtype)
  std::vector<at::Tensor> masters_;  // [same shapes] fp32
};

// Casts every parameter of `model` to `dtype` in place (the tensors stay the same objects, so
// optimizers, tied weights and views follow); buffers keep their dtype.
void cast_parameters(policy::CausalLM& model, at::ScalarType dtype);

}  // namespace r1kit::pipelines
