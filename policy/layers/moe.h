// Mixture-of-experts block: router, routed experts, shared experts.
//
// Router (HF names `mlp.gate.weight`, `mlp.gate.e_score_correction_bias`):
//  - softmax (Qwen): p = softmax(W x) in fp32, top-K, optional renormalisation.
//  - sigmoid (DeepSeek-V3 eq. 15-16): s = sigmoid(W x) in fp32; the correction bias b is
//    added for SELECTION only (group-limited: keep topk_group of n_group groups ranked by
//    the sum of their top-2 biased scores, then top-K); the weights are the unbiased s of
//    the chosen experts, normalised and times routed_scaling_factor.
// Experts are stored fused as in transformers 5 (`mlp.experts.gate_up_proj` [E, 2I, D] with
// gate rows first, `mlp.experts.down_proj` [E, D, I]); the loader also accepts per-expert
// tensors. Forward never loops over tokens: the N*T*K (token, expert) pairs are sorted by
// expert, each expert does one matmul over its contiguous rows (one grouped GEMM on CUDA),
// and the weighted results are scattered back with index_add. Where cpu::kernels_apply
// (rollout on an AVX2 CPU) the experts run in policy/cpu/expert_ffn (one pass, no tensor op
// per expert) on packed copies of the weights kept beside the HF-layout parameters and
// rebuilt whenever they change (policy/cpu/packed_weight, as for every Linear), so training
// and checkpoints never see them.
// Shared experts: deepseek `shared_experts` (always on), qwen2_moe `shared_expert` scaled by
// sigmoid(`shared_expert_gate` x).
#pragma once
#include <torch/nn/module.h>

#include "policy/config.h"
#include "policy/cpu/packed_weight.h"
#include "policy/layers/linear.h"
#include "policy/layers/mlp.h"

namespace r1kit::policy {

struct Routing {
  at::Tensor scores;   // [N*T, E] fp32 router scores before bias (softmax or sigmoid)
  at::Tensor experts;  // [N*T, K] int64 chosen experts
  at::Tensor weights;  // [N*T, K] fp32 their weights
};

class Router : public torch::nn::Module {
 public:
  explicit Router(const ModelConfig& c);
  Routing forward(const at::Tensor& x) const;  // x [N*T, D]
  at::Tensor weight;                           // [E, D]
  at::Tensor bias;                             // [E] e_score_correction_bias (sigmoid only)

 private:
  bool sigmoid_, norm_topk_;
  int64_t top_k_, n_group_, topk_group_;
  double scaling_;
};

class Experts : public torch::nn::Module {
 public:
  Experts(int64_t num_experts, int64_t dim, int64_t hidden);
  // x [N*T, D], routing -> [N*T, D] = sum_k w_k * expert_{e_k}(x); counts [E] int64 (out).
  at::Tensor forward(const at::Tensor& x, const Routing& r, at::Tensor* counts) const;
  void drop_packed() const { gate_up_packed_.clear(), down_packed_.clear(); }
  at::Tensor gate_up_proj;  // [E, 2I, D]
  at::Tensor down_proj;     // [E, D, I]

 private:
  // The packed inference copies of the weights (see the file comment).
  mutable cpu::PackedWeight gate_up_packed_, down_packed_;
};

class MoeBlock : public torch::nn::Module {
 public:
  explicit MoeBlock(const ModelConfig& c);
  at::Tensor forward(const at::Tensor& x);  // [N, T, D] -> [N, T, D]

  Router& router() { return *gate_; }
  // Tokens routed to each expert, summed over forwards since the last take_load(): the
  // aux-loss-free bias update reads it after each optimizer step. Counted in train mode only,
  // and not again when activation checkpointing recomputes the forward.
  at::Tensor take_load();  // [E] fp32, on the router's device
  // Sequence-wise balance loss of the last forward (DeepSeek-V3 eq. 17-20), or undefined.
  const at::Tensor& aux_loss() const { return aux_loss_; }
  // Activation checkpointing replaces it with the checkpointed function's output.
  void set_aux_loss(at::Tensor loss) { aux_loss_ = std::move(loss); }
  // Tokens per expert of the last forward (any mode), for reports.
  const at::Tensor& last_counts() const { return last_counts_; }

 private:
  int64_t num_experts_, top_k_;
  double aux_alpha_;
  std::shared_ptr<Router> gate_;
  std::shared_ptr<Experts> experts_;
  std::shared_ptr<Mlp> shared_;          // deepseek shared_experts or qwen2 shared_expert
  std::shared_ptr<Linear> shared_gate_;  // qwen2_moe only
  at::Tensor load_, aux_loss_, last_counts_;
};

}  // namespace r1kit::policy
