// Router, Experts, MoeBlock (see moe.h). References: HF DeepseekV3TopkRouter / Qwen3MoeTopKRouter
// / Qwen2MoeSparseMoeBlock; DeepSeek-V3 report sec. 2.1.2 (bias, sequence-wise loss).
#include "policy/layers/moe.h"

#include <ATen/ATen.h>

#include "policy/checkpointing.h"
#include "policy/cpu/dispatch.h"
#include "policy/cpu/expert_ffn.h"

namespace r1kit::policy {

Router::Router(const ModelConfig& c)
    : sigmoid_(c.scoring_func == "sigmoid"),
      norm_topk_(c.norm_topk_prob),
      top_k_(c.num_experts_per_tok),
      n_group_(c.n_group),
      topk_group_(c.topk_group),
      scaling_(c.routed_scaling_factor) {
  weight = register_parameter("weight", at::randn({c.num_experts, c.hidden_size}) * 0.02);
  if (sigmoid_) {
    // A buffer, not a parameter: it is never trained by gradients, only by the bias rule.
    bias = register_buffer("e_score_correction_bias", at::zeros({c.num_experts}, at::kFloat));
  }
}

Routing Router::forward(const at::Tensor& x) const {
  Routing r;
  const int64_t M = x.size(0), E = weight.size(0);
  if (!sigmoid_) {
    // Qwen: logits in the model dtype, softmax in fp32.
    r.scores = at::softmax(at::linear(x, weight), /*dim=*/-1, at::kFloat);  // [N*T, E]
    auto [w, idx] = at::topk(r.scores, top_k_, /*dim=*/-1);
    if (norm_topk_) w = w / w.sum(-1, /*keepdim=*/true);
    r.experts = idx;
    r.weights = w;
    return r;
  }
  // DeepSeek-V3: everything in fp32.
  r.scores = at::sigmoid(at::linear(x.to(at::kFloat), weight.to(at::kFloat)));  // [N*T, E]
  at::Tensor choice = r.scores.detach() + bias;                                 // selection only
  if (n_group_ > 1) {
    const at::Tensor grouped = choice.view({M, n_group_, E / n_group_});
    const at::Tensor group_scores = std::get<0>(grouped.topk(2, /*dim=*/-1)).sum(-1);  // [N*T, n_group]
    const at::Tensor keep_groups = std::get<1>(group_scores.topk(topk_group_, -1, /*largest=*/true, /*sorted=*/false));
    const at::Tensor group_mask = at::zeros_like(group_scores).scatter_(1, keep_groups, 1.0).to(at::kBool);
    const at::Tensor expert_mask = group_mask.unsqueeze(-1).expand({M, n_group_, E / n_group_}).reshape({M, E});
    choice = choice.masked_fill(expert_mask.logical_not(), -std::numeric_limits<float>::infinity());
  }
  r.experts = std::get<1>(choice.topk(top_k_, -1, /*largest=*/true, /*sorted=*/false));  // [N*T, K]
  at::Tensor w = r.scores.gather(1, r.experts);
  if (norm_topk_) w = w / (w.sum(-1, /*keepdim=*/true) + 1e-20);
  r.weights = w * scaling_;
  return r;
}

Experts::Experts(int64_t num_experts, int64_t dim, int64_t hidden) {
  gate_up_proj = register_parameter("gate_up_proj", at::randn({num_experts, 2 * hidden, dim}) * 0.02);
  down_proj = register_parameter("down_proj", at::randn({num_experts, dim, hidden}) * 0.02);
}

at::Tensor Experts::forward(const at::Tensor& x, const Routing& r, at::Tensor* counts_out) const {
  if (cpu::kernels_apply(x)) {
    return cpu::expert_ffn(x, r.experts, r.weights, gate_up_packed_.update(gate_up_proj),
                           down_packed_.update(down_proj), counts_out);
  }
  const int64_t K = r.experts.size(1), E = gate_up_proj.size(0);
  const int64_t I = down_proj.size(2);
  // Sort the M*K (token, expert) pairs by expert so each expert's rows are contiguous.
  const at::Tensor flat_expert = r.experts.reshape({-1});                                // [N*T*K]
  const at::Tensor order = at::argsort(flat_expert, /*stable=*/true);                    // [N*T*K]
  const at::Tensor token = at::floor_divide(order, K);                                   // [N*T*K]
  const at::Tensor weight = r.weights.reshape({-1}).index_select(0, order);              // [N*T*K]
  const at::Tensor counts = at::bincount(flat_expert, /*weights=*/{}, /*minlength=*/E);  // [E]
  if (counts_out != nullptr) *counts_out = counts;
  const at::Tensor xs = x.index_select(0, token);  // [N*T*K, D]

  at::Tensor ys;  // [N*T*K, D]
  if (x.is_cuda() && x.scalar_type() == at::kBFloat16) {
    // One grouped GEMM over all experts (offsets = cumulative row counts), no host sync.
    const at::Tensor offs = counts.cumsum(0).to(at::kInt);
    const at::Tensor gu = at::_grouped_mm(xs, gate_up_proj.transpose(1, 2), offs);  // [N*T*K, 2I]
    const at::Tensor h = at::silu(gu.narrow(-1, 0, I)) * gu.narrow(-1, I, I);
    ys = at::_grouped_mm(h, down_proj.transpose(1, 2), offs);  // [N*T*K, D]
  } else {
    const at::Tensor counts_cpu = counts.cpu();
    const int64_t* n = counts_cpu.data_ptr<int64_t>();
    std::vector<at::Tensor> parts;
    int64_t start = 0;
    for (int64_t e = 0; e < E; ++e) {
      if (n[e] == 0) continue;
      const at::Tensor seg = xs.narrow(0, start, n[e]);                          // [n_e, D]
      const at::Tensor gu = at::matmul(seg, gate_up_proj[e].t());                // [n_e, 2I]
      const at::Tensor h = at::silu(gu.narrow(-1, 0, I)) * gu.narrow(-1, I, I);  // gate rows first
      parts.push_back(at::matmul(h, down_proj[e].t()));                          // [n_e, D]
      start += n[e];
    }
    ys = parts.empty() ? at::zeros_like(xs) : at::cat(parts, 0);
  }
  ys = ys * weight.unsqueeze(-1).to(ys.scalar_type());
  return at::zeros_like(x).index_add(0, token, ys);
}

MoeBlock::MoeBlock(const ModelConfig& c)
    : num_experts_(c.num_experts), top_k_(c.num_experts_per_tok), aux_alpha_(c.seq_aux_loss_alpha) {
  gate_ = add(*this, "gate", std::make_shared<Router>(c));
  experts_ = add(*this, "experts", std::make_shared<Experts>(c.num_experts, c.hidden_size, c.moe_intermediate_size));
  if (c.n_shared_experts > 0) {
    shared_ = add(*this, "shared_experts",
                  std::make_shared<Mlp>(c.hidden_size, c.moe_intermediate_size * c.n_shared_experts, false));
  } else if (c.shared_expert_intermediate_size > 0) {
    shared_ =
        add(*this, "shared_expert", std::make_shared<Mlp>(c.hidden_size, c.shared_expert_intermediate_size, false));
    shared_gate_ = add(*this, "shared_expert_gate", std::make_shared<Linear>(c.hidden_size, 1, false));
  }
  load_ = at::zeros({num_experts_}, at::kFloat);
}

at::Tensor MoeBlock::forward(const at::Tensor& x) {
  const int64_t N = x.size(0), T = x.size(1), D = x.size(2);
  const at::Tensor flat = x.reshape({N * T, D});
  const Routing r = gate_->forward(flat);
  at::Tensor counts;
  at::Tensor y = experts_->forward(flat, r, &counts);  // [N*T, D]
  last_counts_ = counts.detach();
  if (is_training() && !in_recompute()) load_ = load_.to(counts.device()) + counts.to(at::kFloat);
  if (shared_) {
    at::Tensor s = shared_->forward(flat);
    if (shared_gate_) s = at::sigmoid(shared_gate_->forward(flat)) * s;
    y = y + s;
  }
  aux_loss_ = at::Tensor();
  if (aux_alpha_ > 0 && is_training()) {
    // DeepSeek-V3 eq. 17-20 per sequence: f_i = E/(K T) * #tokens choosing i,
    // P_i = mean_t s'_{i,t} with s' the scores normalised over experts; L = alpha sum_i f_i P_i.
    const at::Tensor s_norm = (r.scores / r.scores.sum(-1, true)).view({N, T, num_experts_});
    const at::Tensor P = s_norm.mean(/*dim=*/1);  // [N, E]
    const at::Tensor chosen =
        at::zeros({N * T, num_experts_}, r.scores.options()).scatter_(1, r.experts, 1.0).view({N, T, num_experts_});
    const at::Tensor f = chosen.sum(1) * (static_cast<double>(num_experts_) / (top_k_ * T));  // [N, E]
    aux_loss_ = aux_alpha_ * (f * P).sum(-1).mean();
  }
  return y.view({N, T, D});
}

at::Tensor MoeBlock::take_load() {
  // On the router's device even when no training forward ran since the last call (load_ then
  // still holds CPU zeros): data-parallel ranks must reduce it on the same backend.
  at::Tensor out = load_.to(gate_->weight.device());
  load_ = at::zeros_like(out);
  return out;
}

}  // namespace r1kit::policy
